"""Telemetry: the periodic JSON snapshot subscribers receive on ``bodycam/<site>/<device>/telemetry``.

The payload is a contract with people who never read our code (control rooms, Grafana, Home
Assistant): it is versioned (``schema``), described by ``docs/schemas/telemetry.schema.json``, and
every value that the device cannot know is ``null`` rather than a guess.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from base.config import option
from base.utctime import iso_utc

SCHEMA = "bodycam.telemetry/1"


@dataclass(frozen=True)
class TelemetryConfig:
    interval_seconds: int = option(30, "Seconds between telemetry messages (also sent at once on a change of "
                                       "state or alerts).", min=5, max=3600)
    expiry_seconds: int = option(120, "MQTT message expiry of telemetry: a stale snapshot is never delivered late.",
                                 min=10, max=86400)
    homeassistant: bool = option(False, "Publish Home Assistant MQTT discovery so the fleet appears there.")
    homeassistant_prefix: str = option("homeassistant", "Home Assistant's discovery prefix.")


def build_telemetry(status: dict, *, clock_sync: str, alerts: list[dict], battery=None,
                    cpu_temperature_c: float | None = None, throttling: list[str] | None = None,
                    link: dict | None = None, upload: dict | None = None, now: float | None = None) -> dict:
    """One telemetry message from the runtime's status dict, its alerts and the side readings.

    ``alerts`` are the device's current alerts as the message carries them, most severe first: dicts
    of ``code``, ``severity`` ("critical" or "warning") and ``text``; the device program derives them.
    """
    now = time.time() if now is None else now
    pre = status.get("pre_event") or {}
    backlog = status.get("backlog") or {}
    storage = status.get("storage")
    checkout = status.get("checkout")
    return {
        "schema": SCHEMA,
        "device": status["device"],
        "site": status["site"],
        "time": iso_utc(now),
        "clock_sync": clock_sync,
        "software_version": status["version"],
        "recorder": {
            "state": status["state"],
            "incident_id": status.get("incident_id"),
            "recording_since": iso_utc(status["recording_since"]) if status.get("recording_since") else None,
            "pre_event_seconds_held": round(pre.get("seconds_held", 0.0), 2),
            "pre_event_window_seconds": pre.get("window_seconds", 0.0),
            "frames_dropped": status.get("frames_lost", 0),
            "refused_reason": status.get("refused_reason"),
            "sound": status.get("sound", "off"),
            "pre_event_mode": pre.get("mode", "standby"),
            "pre_recording": bool(pre.get("active", False)),
        },
        "policy": {"profile": status.get("profile", "custom")},
        "battery": {"percent": battery.percent, "voltage": battery.voltage} if battery else None,
        "storage": {"level": storage["level"], "free_bytes": storage["free_bytes"],
                    "total_bytes": storage["total_bytes"]} if storage else None,
        "backlog": {"segments": backlog.get("segments", 0), "bytes": backlog.get("bytes", 0),
                    "oldest_age_s": backlog.get("oldest_age_s")},
        "upload": upload,
        "system": {"cpu_temperature_c": cpu_temperature_c, "throttling": throttling, "link": link},
        "display": status.get("display"),
        "alerts": [dict(a) for a in alerts],
        "audit_head": status.get("audit_head"),
        "chain_head": status.get("chain_head"),
        # Officer check-out; null when it is not enabled on the device.
        "assignment": {"officer": checkout["officer"], "via": checkout.get("via"), "docked": checkout.get("docked"),
                       "since": iso_utc(checkout["since"]) if checkout.get("since") else None}
        if checkout else None,
    }


def significant(previous: dict | None, current: dict) -> bool:
    """A change worth publishing before the next interval: recorder state, incident, the alert set or the
    assigned officer."""
    if previous is None:
        return True
    return (previous["recorder"]["state"] != current["recorder"]["state"]
            or previous["recorder"]["incident_id"] != current["recorder"]["incident_id"]
            or [a["code"] for a in previous["alerts"]] != [a["code"] for a in current["alerts"]]
            or _officer(previous) != _officer(current))


def _officer(telemetry: dict) -> str | None:
    assignment = telemetry.get("assignment")
    return assignment["officer"] if assignment else None
