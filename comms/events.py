"""Events on ``bodycam/<site>/<device>/events``: recordings and alerts as new → update → end.

In the spirit of Frigate's event topic: every event has a stable id, and each message carries the
event's state before and after, so a subscriber that missed one message still knows where it stands.
Recordings are keyed by incident id, alerts by code and the time they were raised.
"""

from __future__ import annotations

import time

from agent.recorder import StateChanged

from .telemetry import iso

SCHEMA = "bodycam.event/1"


class EventTracker:
    """Turns recorder transitions and alert lists into event messages. One thread owns it."""

    def __init__(self, device: str, site: str):
        self.device, self.site = device, site
        self._recording: dict | None = None
        self._alerts: dict[str, dict] = {}

    def _message(self, kind: str, before: dict | None, after: dict) -> dict:
        return {"schema": SCHEMA, "device": self.device, "site": self.site, "time": iso(time.time()),
                "type": kind, "before": before, "after": after}

    def on_recorder_event(self, event) -> list[dict]:
        if not isinstance(event, StateChanged):
            return []
        trigger = event.trigger.origin if event.trigger else "internal"
        if event.state.recording and not event.previous.recording:
            self._recording = {"id": event.incident_id, "kind": "recording", "trigger": trigger,
                               "state": event.state.value, "start_time": iso(event.wall_time), "end_time": None}
            return [self._message("new", None, dict(self._recording))]
        if self._recording is None:
            return []
        before = dict(self._recording)
        if event.state.recording:  # RECORDING ↔ FINISHING (post-event)
            self._recording["state"] = event.state.value
            return [self._message("update", before, dict(self._recording))]
        self._recording.update(state="ended", end_time=iso(event.wall_time), stop_trigger=trigger)
        ended, self._recording = dict(self._recording), None
        return [self._message("end", before, ended)]

    def on_alerts(self, alerts: list[dict]) -> list[dict]:
        """``alerts`` as in telemetry; raised ones give "new", changed text "update", cleared ones "end"."""
        messages, current = [], {a["code"]: a for a in alerts}
        for code, alert in current.items():
            known = self._alerts.get(code)
            if known is None:
                self._alerts[code] = {"id": f"alert-{code}-{int(time.time() * 1000)}", "kind": "alert",
                                      "start_time": iso(time.time()), "end_time": None, **alert}
                messages.append(self._message("new", None, dict(self._alerts[code])))
            elif known["text"] != alert["text"] or known["severity"] != alert["severity"]:
                before = dict(known)
                known.update(alert)
                messages.append(self._message("update", before, dict(known)))
        for code in list(self._alerts):
            if code not in current:
                before = self._alerts.pop(code)
                messages.append(self._message("end", before, {**before, "end_time": iso(time.time())}))
        return messages
