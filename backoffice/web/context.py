"""What every page's frame needs: the signed-in person's roles (named in the page's language), for the
navigation and the header; and the page's names of the catalog's roles and incident states."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from ..catalog.models import Incident
from ..catalog.roles import ADMIN, DATA_PROTECTION, OFFICER, REVIEWER, SUPERVISOR
from .access import roles_of

ROLE_NAMES = {OFFICER: _("officer"), REVIEWER: _("reviewer"), SUPERVISOR: _("supervisor"),
              DATA_PROTECTION: _("data-protection officer"), ADMIN: _("admin")}
STATE_NAMES = {Incident.ACTIVE: _("kept"), Incident.DELETING: _("being deleted"), Incident.DELETED: _("deleted")}


def review(request) -> dict:
    roles = roles_of(request.user) if hasattr(request, "user") else frozenset()
    return {"my_roles": [ROLE_NAMES[r] for r in sorted(roles)], "is_privacy_officer": DATA_PROTECTION in roles}
