"""The state retention profiles and the expiry they give an incident.

The periods come from the legal profile table both programs share (``base/legal_profiles.toml``, the
``retention`` rule of each state), so the data-protection officer reads the rule the code applies, with
its source, in one place. A site names its profile by the state's code (NW, BW, BY, HE).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from base.legal import LegalProfileError, check_period, period_parts, profiles as legal_profiles

#: Raised for an unknown profile or a malformed period (the shared table's error).
ProfileError = LegalProfileError

__all__ = ["ProfileError", "RetentionProfile", "check_period", "expiry", "profile", "profiles"]


@dataclass(frozen=True)
class RetentionProfile:
    code: str
    state: str
    period: str
    source: str
    confirm: str | None = None

    def describe(self) -> str:
        return f"{self.code} {self.period}: {self.source}"


@cache
def profiles() -> dict[str, RetentionProfile]:
    out = {}
    for legal in legal_profiles().values():
        rule = legal.rule("retention")
        out[legal.code] = RetentionProfile(legal.code, legal.state, rule.value, rule.source, rule.confirm)
    return out


def profile(code: str) -> RetentionProfile:
    try:
        return profiles()[code]
    except KeyError:
        raise ProfileError(f"unknown retention profile {code!r} (known: {', '.join(sorted(profiles()))})") from None


def expiry(end: datetime, period: str, shift_hours: int) -> datetime:
    """When an incident that ended at ``end`` expires under ``period`` (deleted at that instant, not before)."""
    parts = period_parts(period)
    if parts is None:
        return end + timedelta(hours=shift_hours)
    n, unit = parts
    if unit == "d":
        return end + timedelta(days=n)
    month = end.month - 1 + n
    year, month = end.year + month // 12, month % 12 + 1
    return end.replace(year=year, month=month, day=min(end.day, calendar.monthrange(year, month)[1]))
