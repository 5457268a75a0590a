"""One line of the doctor's report: a level, what was found, and how to fix it."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Level(str, enum.Enum):
    """OK; WARN (works, but needs attention); FAIL (does not work: the command exits 1); SKIP (does
    not apply here, e.g. the broker while uploading is switched off)."""

    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True)
class Check:
    """What was checked, what was found, and, unless all is well, one sentence saying how to fix it."""

    name: str
    level: Level
    title: str
    fix: str = ""

    def as_dict(self) -> dict:
        return {"name": self.name, "level": self.level.value, "title": self.title, "fix": self.fix}


def ok(name: str, title: str) -> Check:
    return Check(name, Level.OK, title)


def warn(name: str, title: str, fix: str) -> Check:
    return Check(name, Level.WARN, title, fix)


def fail(name: str, title: str, fix: str) -> Check:
    return Check(name, Level.FAIL, title, fix)


def skip(name: str, title: str, fix: str = "") -> Check:
    return Check(name, Level.SKIP, title, fix)


def format_duration(seconds: float) -> str:
    """'42 s', '5 min', '3 h', '2 days': as precise as a person needs for an age."""
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"
