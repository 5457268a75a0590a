"""The state retention profiles (``retention_profiles.toml``) and the expiry they give an incident.

Kept as data with its legal source, so the data-protection officer reads the rule the code applies.
"""

from __future__ import annotations

import calendar
import re
import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

from base.errors import BodycamError

PROFILES_FILE = Path(__file__).with_name("retention_profiles.toml")
_PERIOD = re.compile(r"(\d{1,4})(d|mo)|shift")


class ProfileError(BodycamError):
    """A retention profile or period is malformed or unknown."""


@dataclass(frozen=True)
class RetentionProfile:
    code: str
    state: str
    period: str
    source: str
    confirm: str | None = None

    def describe(self) -> str:
        return f"{self.code} {self.period}: {self.source}"


def check_period(period: str) -> str:
    if not _PERIOD.fullmatch(period):
        raise ProfileError(f"retention period {period!r} must be '<n>d', '<n>mo' or 'shift'")
    return period


@cache
def profiles() -> dict[str, RetentionProfile]:
    table = tomllib.loads(PROFILES_FILE.read_text(encoding="utf-8"))
    out = {}
    for code, row in table.items():
        out[code] = RetentionProfile(code, row["state"], check_period(row["period"]), row["source"],
                                     row.get("confirm"))
    return out


def profile(code: str) -> RetentionProfile:
    try:
        return profiles()[code]
    except KeyError:
        raise ProfileError(f"unknown retention profile {code!r} (known: {', '.join(sorted(profiles()))})") from None


def expiry(end: datetime, period: str, shift_hours: int) -> datetime:
    """When an incident that ended at ``end`` expires under ``period`` (deleted at that instant, not before)."""
    match = _PERIOD.fullmatch(check_period(period))
    if period == "shift":
        return end + timedelta(hours=shift_hours)
    n, unit = int(match.group(1)), match.group(2)
    if unit == "d":
        return end + timedelta(days=n)
    month = end.month - 1 + n
    year, month = end.year + month // 12, month % 12 + 1
    return end.replace(year=year, month=month, day=min(end.day, calendar.monthrange(year, month)[1]))
