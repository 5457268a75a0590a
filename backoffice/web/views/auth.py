"""Signing in and out (and the language switch): Django's authentication, a lockout per user name, and an
audit line for each login, failure, lockout and logout."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, login, logout
from django.shortcuts import redirect, render
from django.utils import formats, timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django.views.i18n import set_language

from ...catalog import office as events
from .. import lockout, office_link
from ..access import public
from ..client import client_address
from ..forms import LoginForm

logger = logging.getLogger(__name__)


def _next_url(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                       require_https=request.is_secure()):
        return target
    return settings.LOGIN_REDIRECT_URL


@public
@sensitive_post_parameters("password")
@csrf_protect
@never_cache
def login_view(request):
    form = LoginForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        username, password = form.cleaned_data["username"], form.cleaned_data["password"]
        office, via = office_link.office(), client_address(request)
        now = office.now()
        until = lockout.locked_until(username, now)
        if until is not None:
            office.record(events.LOGIN_FAILED, username=username, via=via, reason="locked",
                          failures=settings.REVIEW_LOCKOUT_FAILURES)
            form.add_error(None, _("Too many failed attempts: signing in as this user is locked until %(time)s.")
                           % {"time": formats.time_format(timezone.localtime(until), "H:i")})
        else:
            user = authenticate(request, username=username, password=password)
            if user is None:
                failures = lockout.record_failure(username, now, via)
                office.record(events.LOGIN_FAILED, username=username, via=via, reason="password", failures=failures)
                logger.info("failed login for %r from %s (%d in the window)", username, via, failures)
                if failures >= settings.REVIEW_LOCKOUT_FAILURES:
                    until = lockout.locked_until(username, now)
                    office.record(events.LOGIN_LOCKED, username=username, via=via, failures=failures,
                                  until=until.isoformat())
                    logger.warning("user name %r locked until %s after %d failed logins", username, until, failures)
                form.add_error(None, _("User name or password is wrong."))
            else:
                lockout.clear(username)
                login(request, user)
                office.record(events.LOGIN, by=user.get_username(), via=via)
                return redirect(_next_url(request))
    return render(request, "web/login.html", {"form": form, "next": _next_url(request)})


@public
@require_POST
def logout_view(request):
    if request.user.is_authenticated:
        office_link.office().record(events.LOGOUT, by=request.user.get_username(), via=client_address(request),
                                    reason="asked")
        logout(request)
        messages.info(request, _("You are signed out."))
    return redirect("login")


@public
def language(request):
    """The language switch (Django's ``set_language``: POST, CSRF-checked, ``next`` kept within the site)."""
    return set_language(request)
