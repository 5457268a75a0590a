"""Times as they are written into manifests, audit lines, telemetry and reports: ISO 8601 in UTC."""

from __future__ import annotations

import datetime as _dt


def iso_utc(ts: float, *, millis: bool = True) -> str:
    """UNIX time as ISO 8601 UTC, e.g. ``2025-06-01T09:30:00.125Z`` (``millis=False``: ``...T09:30:00Z``)."""
    t = _dt.datetime.fromtimestamp(ts, tz=_dt.timezone.utc)
    if not millis:
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def parse_iso_utc(text: str) -> float:
    """The UNIX time of an ISO 8601 string (``Z`` or an offset); ValueError when it is none."""
    t = _dt.datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    if t.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone")
    return t.timestamp()
