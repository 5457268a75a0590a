"""Events on ``bodycam/<site>/<device>/events``: recordings and alerts as new → update → end.

In the spirit of Frigate's event topic: every event has a stable id, and each message carries the
event's state before and after, so a subscriber that missed one message still knows where it stands.
Recordings are keyed by incident id, alerts by code and the time they were raised. What is open is
kept on the card (comms.openevents), so the next agent ends what a crash left open.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from base.utctime import iso_utc

from .openevents import OpenEventsFile

SCHEMA = "bodycam.event/1"
#: A restarted agent derives some alerts only once its parts have measured (storage, display), so an
#: alert that was open before the restart gets this long to be raised again before it is ended.
SETTLE_SECONDS = 10.0
#: ``stop_trigger`` of a recording that the agent's end interrupted, ended by the next agent.
RESTART_TRIGGER = "agent_restart"


@dataclass(frozen=True)
class RecordingEvent:
    """A change of the recorder's state, with what the event messages need; the device program translates
    its recorder's own events into these."""

    state: str  # the new state as telemetry names it: standby, mirror, recording, finishing
    recording: bool  # the new state stores evidence
    was_recording: bool  # the previous state did
    incident_id: str | None
    trigger: str | None  # who asked: button, command, input, storage …; None when the recorder moved by itself
    wall_time: float


class EventTracker:
    """Turns recording events and alert lists into event messages. One thread owns it.

    With a ``store`` every new gets its end across a crash: the open events are saved whenever one
    opens or ends, and a new tracker picks them up. An alert still raised after the restart simply
    goes on (same id, no second "new"); one that is not raised again within ``settle_s`` ends; an
    interrupted recording ends at once (:meth:`end_interrupted`).
    """

    def __init__(self, device: str, site: str, store: OpenEventsFile | None = None, *,
                 settle_s: float = SETTLE_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.device, self.site = device, site
        self._store = store
        self._recording, self._alerts = store.load() if store is not None else (None, {})
        self._restored = set(self._alerts)
        self._clock = clock
        self._settle_until = clock() + settle_s

    def _message(self, kind: str, before: dict | None, after: dict) -> dict:
        return {"schema": SCHEMA, "device": self.device, "site": self.site, "time": iso_utc(time.time()),
                "type": kind, "before": before, "after": after}

    def _save(self) -> None:
        """Before the messages are handed out: a crash after this can cost an end, never leave a new open."""
        if self._store is not None:
            self._store.save(self._recording, self._alerts)

    @property
    def reconcile_due(self) -> bool:
        """True when alerts open before the restart may now be ended: evaluate the alert list."""
        return bool(self._restored) and self._clock() >= self._settle_until

    def end_interrupted(self) -> list[dict]:
        """The end of a recording left open by the previous agent (a new agent's recorder starts in standby)."""
        if self._recording is None:
            return []
        messages = [self._end_recording(iso_utc(time.time()), RESTART_TRIGGER)]
        self._save()
        return messages

    def _end_recording(self, end_time: str, trigger: str) -> dict:
        before = dict(self._recording)
        ended = {**before, "state": "ended", "end_time": end_time, "stop_trigger": trigger}
        self._recording = None
        return self._message("end", before, ended)

    def on_recorder_event(self, event: RecordingEvent) -> list[dict]:
        trigger = "internal" if event.trigger is None else event.trigger
        if event.recording and not event.was_recording:
            messages = self.end_interrupted()
            self._recording = {"id": event.incident_id, "kind": "recording", "trigger": trigger,
                               "state": event.state, "start_time": iso_utc(event.wall_time), "end_time": None}
            self._save()
            return messages + [self._message("new", None, dict(self._recording))]
        if self._recording is None:
            return []
        before = dict(self._recording)
        if event.recording:  # RECORDING ↔ FINISHING (post-event)
            self._recording["state"] = event.state
            return [self._message("update", before, dict(self._recording))]
        messages = [self._end_recording(iso_utc(event.wall_time), trigger)]
        self._save()
        return messages

    def on_alerts(self, alerts: list[dict]) -> list[dict]:
        """``alerts`` as in telemetry; raised ones give "new", changed text "update", cleared ones "end"."""
        messages, current = [], {a["code"]: a for a in alerts}
        settling = self._clock() < self._settle_until
        for code, alert in current.items():
            self._restored.discard(code)  # raised again: an ordinary open alert from now on
            known = self._alerts.get(code)
            if known is None:
                self._alerts[code] = {"id": f"alert-{code}-{int(time.time() * 1000)}", "kind": "alert",
                                      "start_time": iso_utc(time.time()), "end_time": None, **alert}
                messages.append(self._message("new", None, dict(self._alerts[code])))
            elif known["text"] != alert["text"] or known["severity"] != alert["severity"]:
                before = dict(known)
                known.update(alert)
                messages.append(self._message("update", before, dict(known)))
        for code in list(self._alerts):
            if code not in current and not (settling and code in self._restored):
                self._restored.discard(code)
                before = self._alerts.pop(code)
                messages.append(self._message("end", before, {**before, "end_time": iso_utc(time.time())}))
        if any(m["type"] != "update" for m in messages):
            self._save()
        return messages
