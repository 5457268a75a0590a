"""Who may use which view: every view names its roles here, checked on the server before it does anything.

Rules about a single incident are the catalog's (:func:`backoffice.catalog.models.may_see` and the
lifecycle methods); this module only turns people away who may never use a view: signed out to the
login page, without a fitting role to 403.
"""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

from ..catalog.roles import DATA_PROTECTION, OFFICER, REVIEWER, ROLES, SUPERVISOR

#: Every role (admins see records: dashboard, lists, pages; no video and no reports).
ANY_ROLE = ROLES
#: Place a hold (the catalog's rule).
HOLDERS = (REVIEWER, SUPERVISOR)
#: Propose an early deletion or a hold's release (officers for their own recordings).
PROPOSERS = (OFFICER, REVIEWER, SUPERVISOR)
APPROVERS = (SUPERVISOR,)
PRIVACY = (DATA_PROTECTION,)


def roles_of(user) -> frozenset[str]:
    """The user's roles, read once per request."""
    if not (user.is_authenticated and user.is_active):
        return frozenset()
    cached = getattr(user, "_bodycam_roles", None)
    if cached is None:
        cached = frozenset(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        user._bodycam_roles = cached
    return cached


def roles_required(*roles: str):
    """The view needs a signed-in user with one of ``roles``: otherwise the login page (signed out) or 403."""
    def decorate(view):
        @wraps(view)
        def checked(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not roles_of(request.user) & set(roles):
                raise PermissionDenied
            return view(request, *args, **kwargs)
        checked.roles = roles
        return checked
    return decorate


def public(view):
    """Open to everyone, signed in or not (login, language, static files): said explicitly, so every view
    carries a decision."""
    view.roles = "public"
    return view
