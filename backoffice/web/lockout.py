"""Lockout after repeated failed logins: ``REVIEW_LOCKOUT_FAILURES`` within ``REVIEW_LOCKOUT_SECONDS`` lock
a user name until that window has passed since the failure that locked it.

Attempts while locked are refused without looking at the password and are not counted again, so a
stranger typing a colleague's name cannot keep the lock on for ever; each is an audit line all the same.
A successful login clears the name's failures.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings

from .models import LoginFailure


def _window() -> timedelta:
    return timedelta(seconds=settings.REVIEW_LOCKOUT_SECONDS)


def locked_until(username: str, now: datetime) -> datetime | None:
    """When the lock on ``username`` ends, or None when it is not locked."""
    recent = list(LoginFailure.objects.filter(username=username, at__gt=now - _window())
                  .order_by("-at").values_list("at", flat=True)[:settings.REVIEW_LOCKOUT_FAILURES])
    if len(recent) < settings.REVIEW_LOCKOUT_FAILURES:
        return None
    return recent[0] + _window()


def record_failure(username: str, now: datetime, via: str) -> int:
    """Count one failure; the number of failures now within the window."""
    LoginFailure.objects.create(username=username, at=now, via=via)
    return LoginFailure.objects.filter(username=username, at__gt=now - _window()).count()


def clear(username: str) -> None:
    LoginFailure.objects.filter(username=username).delete()
