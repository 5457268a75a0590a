"""Every event's "new" gets its "end", also when the agent dies in between: the open events are kept in
the state directory and the next agent ends what is over and carries on what is still open."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import jsonschema

from comms.events import RESTART_TRIGGER, EventTracker, RecordingEvent
from comms.openevents import OpenEventsFile

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "schemas" / "event.schema.json").read_text())
UPLOAD = {"code": "upload_failing", "severity": "warning", "text": "the back office's receiver does not answer"}
DISPLAY = {"code": "display_fault", "severity": "warning", "text": "front display fault: nothing answers"}


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def tracker(path, clock=None, device="kod-07"):
    return EventTracker(device, "duisburg", OpenEventsFile(path, device, "duisburg"), settle_s=10.0,
                        clock=clock or Clock())


def summary(messages):
    return [(m["type"], m["after"].get("code") or m["after"]["kind"]) for m in messages]


def test_alerts_left_open_by_a_killed_agent_are_ended_or_carried_on_by_the_next(tmp_path):
    path = tmp_path / "open_events.json"
    raised = tracker(path).on_alerts([UPLOAD, DISPLAY])
    ids = {m["after"]["code"]: m["after"]["id"] for m in raised}
    # the agent is killed here: no end is ever sent by it

    clock = Clock()
    restarted = tracker(path, clock)
    assert restarted.on_alerts([]) == [] and not restarted.reconcile_due  # settling: not yet measured again
    assert restarted.on_alerts([DISPLAY]) == []  # still open: carried on, no second "new"
    clock.now += 10.0
    assert restarted.reconcile_due
    ended = restarted.on_alerts([DISPLAY])
    assert summary(ended) == [("end", "upload_failing")] and ended[0]["after"]["id"] == ids["upload_failing"]
    assert ended[0]["after"]["end_time"] and not restarted.reconcile_due
    later = restarted.on_alerts([])
    assert summary(later) == [("end", "display_fault")] and later[0]["after"]["id"] == ids["display_fault"]
    for message in raised + ended + later:
        jsonschema.validate(message, SCHEMA)
    assert tracker(path).on_alerts([]) == []  # nothing is left open for a third agent


def test_a_recording_cut_short_by_the_agents_end_is_ended_by_the_next(tmp_path):
    path = tmp_path / "open_events.json"
    started = tracker(path).on_recorder_event(
        RecordingEvent("recording", True, False, "inc-1", "button", 1_700_000_000.0))
    restarted = tracker(path)
    ended = restarted.end_interrupted()
    assert summary(ended) == [("end", "recording")]
    assert ended[0]["after"]["id"] == started[0]["after"]["id"] == "inc-1"
    assert ended[0]["after"]["stop_trigger"] == RESTART_TRIGGER and ended[0]["after"]["state"] == "ended"
    jsonschema.validate(ended[0], SCHEMA)
    assert restarted.end_interrupted() == [] and tracker(path).end_interrupted() == []


def test_events_are_published_even_when_they_cannot_be_kept(tmp_path, caplog):
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("")
    with caplog.at_level(logging.ERROR, logger="comms.openevents"):
        assert summary(tracker(blocked / "open_events.json").on_alerts([UPLOAD])) == [("new", "upload_failing")]
    assert "cannot keep the open events" in caplog.text


def test_another_devices_file_is_not_taken_over(tmp_path):
    path = tmp_path / "open_events.json"
    tracker(path, device="kod-01").on_alerts([UPLOAD])
    clock = Clock()
    other = tracker(path, clock, device="kod-07")
    clock.now += 60
    assert not other.reconcile_due and other.on_alerts([]) == []
