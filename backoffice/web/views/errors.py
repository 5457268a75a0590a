"""Error pages that say what happened in the reader's language (a refused CSRF check is not a
permission problem, and the pages say which it was)."""

from __future__ import annotations

from django.shortcuts import render


def csrf_failure(request, reason: str = ""):
    return render(request, "web/csrf_failure.html", status=403)
