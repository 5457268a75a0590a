"""`bodycam fleet`: a live table of every device, for a control room without other tooling.

Built only from what devices publish: the retained ``status`` (online / stopped / offline by last
will) and the latest ``telemetry``. The model is plain data (:class:`FleetView`); the terminal loop
redraws it once a second.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

STATE_LABELS = {"standby": "standby", "mirror": "MIRROR", "recording": "RECORDING", "finishing": "RECORDING+"}


@dataclass
class DeviceRow:
    site: str
    device: str
    status: str = "?"
    telemetry: dict | None = None
    last_seen: float | None = None
    errors: int = 0


@dataclass
class FleetView:
    """Devices by (site, device); fed with (topic, payload) pairs from any thread-owning loop."""

    rows: dict = field(default_factory=dict)
    stale_after_s: float = 120.0

    def apply(self, topic: str, payload: bytes, now: float | None = None) -> None:
        parts = topic.split("/")
        if len(parts) != 4 or parts[0] != "bodycam" or parts[3] not in ("status", "telemetry"):
            return
        now = time.time() if now is None else now
        row = self.rows.setdefault((parts[1], parts[2]), DeviceRow(parts[1], parts[2]))
        if parts[3] == "status":
            text = payload.decode("utf-8", "replace").strip()
            row.status = text if text in ("online", "stopped", "offline") else f"?{text[:10]}"
            return
        try:
            doc = json.loads(payload)
            if not isinstance(doc, dict) or not str(doc.get("schema", "")).startswith("bodycam.telemetry/"):
                raise ValueError("not bodycam telemetry")
        except (ValueError, UnicodeDecodeError) as exc:
            row.errors += 1
            logger.warning("%s: unreadable telemetry (%s)", topic, exc)
            return
        row.telemetry, row.last_seen = doc, now

    def table(self, now: float | None = None) -> list[list[str]]:
        now = time.time() if now is None else now
        lines = [["SITE", "DEVICE", "LINK", "STATE", "PRE-EVENT", "PROFILE", "BATTERY", "STORAGE FREE", "BACKLOG",
                  "LAST SEEN", "ALERTS", "OFFICER"]]
        for (site, device), row in sorted(self.rows.items()):
            t = row.telemetry or {}
            rec, bat, sto, back = t.get("recorder") or {}, t.get("battery"), t.get("storage"), t.get("backlog") or {}
            age = now - row.last_seen if row.last_seen else None
            lines.append([
                site, device,
                row.status + (" (stale)" if age is not None and age > self.stale_after_s else ""),
                STATE_LABELS.get(rec.get("state"), rec.get("state") or "-"),
                _pre_event(rec),
                (t.get("policy") or {}).get("profile") or "-",
                f"{bat['percent']:.0f} %" if bat else "unknown",
                f"{sto['free_bytes'] / 2**30:.1f} GiB ({sto['level']})" if sto else "-",
                f"{back.get('segments', 0)} / {back.get('bytes', 0) / 1e6:.0f} MB" if t else "-",
                _age(age),
                ", ".join(a["code"] for a in t.get("alerts", [])) or "-",
                _officer(t.get("assignment")),
            ])
        return lines

    def render(self, now: float | None = None) -> str:
        lines = self.table(now)
        widths = [max(len(r[i]) for r in lines) for i in range(len(lines[0]))]
        return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in lines)


def _officer(assignment: dict | None) -> str:
    """Officer check-out: the officer's pseudonymous id, "unassigned", or "-" where check-out is off."""
    if not assignment:
        return "-"
    return assignment.get("officer") or "unassigned"


def _pre_event(recorder: dict) -> str:
    """The pre-event mode, "(active)" while the ring fills; "-" from a device that does not say."""
    mode = recorder.get("pre_event_mode")
    if not mode:
        return "-"
    return f"{mode} (active)" if recorder.get("pre_recording") else mode


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"
