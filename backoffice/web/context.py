"""What every page's frame needs: the signed-in person's roles (named in the page's language), for the
navigation and the header."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from ..catalog.roles import ADMIN, DATA_PROTECTION, OFFICER, REVIEWER, SUPERVISOR
from .access import roles_of

ROLE_NAMES = {OFFICER: _("officer"), REVIEWER: _("reviewer"), SUPERVISOR: _("supervisor"),
              DATA_PROTECTION: _("data-protection officer"), ADMIN: _("admin")}


def review(request) -> dict:
    roles = roles_of(request.user) if hasattr(request, "user") else frozenset()
    return {"my_roles": [ROLE_NAMES[r] for r in sorted(roles)], "is_privacy_officer": DATA_PROTECTION in roles}
