"""The review app's middleware: strict response headers, German unless English was chosen, the end of an
idle or too old session, and the time zone pages show."""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.utils import timezone
from django.utils.translation import gettext as _

from ..catalog import office as events
from . import office_link
from .client import client_address

logger = logging.getLogger(__name__)

#: Only our own files; no inline script or style (templates use classes, static/web/app.js the behaviour).
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self'",
    "media-src 'self' blob:",  # the player may feed fragmented MP4 through Media Source Extensions
    "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
])
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"

LOGIN_AT, SEEN_AT = "bodycam_login_at", "bodycam_seen_at"


class SecurityHeadersMiddleware:
    """CSP, Permissions-Policy, and no caching of pages with personal data (Django's SecurityMiddleware
    and XFrameOptionsMiddleware add nosniff, Referrer-Policy, COOP, X-Frame-Options, HSTS behind TLS)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        response.headers.setdefault("Cache-Control", "no-store")
        return response


class GermanUnlessChosenMiddleware:
    """German by default, whatever the browser asks for: only the language switch's cookie changes it.

    Removes ``Accept-Language`` before Django's LocaleMiddleware reads it, so an office PC set up in
    English still shows the German pages its colleagues see, until its user picks English.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.META.pop("HTTP_ACCEPT_LANGUAGE", None)
        return self.get_response(request)


class SessionTimeoutMiddleware:
    """Ends a session idle for ``REVIEW_IDLE_SECONDS`` or older than ``REVIEW_SESSION_SECONDS`` (by the
    office clock); the end is an audit line (``logout``, reason ``idle`` or ``absolute``). A session
    without its start stamp (made some other way) is ended too."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            now = office_link.now().timestamp()
            started, seen = request.session.get(LOGIN_AT), request.session.get(SEEN_AT)
            reason = None
            if started is None or seen is None or now - started >= settings.REVIEW_SESSION_SECONDS:
                reason = "absolute"
            elif now - seen >= settings.REVIEW_IDLE_SECONDS:
                reason = "idle"
            if reason:
                username = request.user.get_username()
                office_link.office().record(events.LOGOUT, by=username, via=client_address(request), reason=reason)
                logger.info("session of %r ended (%s)", username, reason)
                logout(request)
                messages.info(request, _("Your session has ended. Please sign in again."))
            else:
                request.session[SEEN_AT] = now
        return self.get_response(request)


def stamp_session(sender, request, user, **kwargs):
    """``user_logged_in``: the session's start, from which the session timeout counts."""
    now = office_link.now().timestamp()
    request.session[LOGIN_AT] = request.session[SEEN_AT] = now


class DisplayTimeZoneMiddleware:
    """Pages show times in ``REVIEW_TIME_ZONE`` (the office's); the database and the audit log keep UTC."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.zone = ZoneInfo(settings.REVIEW_TIME_ZONE)

    def __call__(self, request):
        timezone.activate(self.zone)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
