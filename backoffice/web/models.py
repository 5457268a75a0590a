"""What the review app keeps itself: the login failures that lock a user name (the catalog keeps the rest)."""

from __future__ import annotations

from django.db import models


class LoginFailure(models.Model):
    """One failed login for a user name, counted by :mod:`.lockout` within its window.

    In the database, not a cache, so every worker and a restart see the same count. The name is kept as
    typed (it need not be a real account: locking unknown names too tells an attacker nothing).
    """

    username = models.CharField(max_length=150)
    at = models.DateTimeField()
    via = models.CharField(max_length=64)

    class Meta:
        indexes = [models.Index(fields=["username", "at"])]
