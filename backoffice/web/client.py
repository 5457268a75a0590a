"""Where a request came from, as the audit log and the access rows name it ("web 10.1.2.3")."""

from __future__ import annotations

from django.conf import settings


def client_address(request) -> str:
    """The browser's address: behind the TLS proxy (``REVIEW_BEHIND_TLS``) the last ``X-Forwarded-For`` hop
    (the one the proxy added; earlier ones are the browser's own claims), else the connection's peer."""
    address = request.META.get("REMOTE_ADDR", "") or "unknown"
    if settings.REVIEW_BEHIND_TLS:
        forwarded = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        if forwarded:
            address = forwarded[-1]
    return f"web {address}"[:64]
