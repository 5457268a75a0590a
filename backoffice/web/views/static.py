"""The app's own CSS and JavaScript, served by the app (a few small files; the proxy may serve them
itself, docs/REVIEW.md)."""

from __future__ import annotations

from pathlib import Path

from django.views.decorators.http import require_GET
from django.views.static import serve

from ..access import public

ROOT = Path(__file__).resolve().parent.parent / "static"


@public
@require_GET
def static_file(request, path: str):
    response = serve(request, path, document_root=ROOT)
    response["Cache-Control"] = "public, max-age=3600"
    return response
