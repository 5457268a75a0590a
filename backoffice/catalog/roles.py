"""The five roles, as Django groups. Rules check membership here, never a name typed somewhere else."""

from __future__ import annotations

OFFICER = "officer"                  # own recordings
REVIEWER = "reviewer"                # reviews recordings, proposes deletions, places holds
SUPERVISOR = "supervisor"            # approves what another person proposed
DATA_PROTECTION = "data-protection"  # logs and reports, no video
ADMIN = "admin"                      # sites, retention policies, users

ROLES = (OFFICER, REVIEWER, SUPERVISOR, DATA_PROTECTION, ADMIN)


def ensure_roles() -> None:
    from django.contrib.auth.models import Group

    for name in ROLES:
        Group.objects.get_or_create(name=name)


def has_role(user, role: str) -> bool:
    return user.is_active and user.groups.filter(name=role).exists()
