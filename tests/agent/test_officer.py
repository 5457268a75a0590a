"""The translation between the agent and the officer interface: every state, level and request has its twin."""

from __future__ import annotations

import dataclasses

import pytest

from agent.alerts import derive_alerts
from agent.diskspace import DiskSnapshot, PressureLevel
from agent.officer import alert_codes, officer_status, officer_storage, trigger_for
from agent.recorder import Action, RecorderStatus, State
from camera.ring import RingStats
from ui.controls import ControlRequest, Request
from ui.state import OfficerState, StorageLevel


def recorder_status(state: State, since: float | None = None) -> RecorderStatus:
    ring = RingStats(**{f.name: 0 for f in dataclasses.fields(RingStats)})
    return RecorderStatus(state=state, incident_id=None, recording_since=since, segments_emitted=0, frames_seen=0,
                          frames_lost=0, overrun_alarm=False, refused_reason=None, ring=ring)


@pytest.mark.parametrize("state", list(State))
def test_every_recorder_state_has_an_officer_state(state):
    status = officer_status(recorder_status(state, since=12.5))
    assert status.state.name == state.name and status.state.recording == state.recording
    assert status.recording_since == 12.5
    assert len(OfficerState) == len(State)


@pytest.mark.parametrize("level", list(PressureLevel))
def test_every_disk_level_has_a_storage_level(level):
    storage = officer_storage(DiskSnapshot(level, free_bytes=1, total_bytes=4, reason="", path="/spool"))
    assert storage.level.name == level.name and storage.used == 0.75
    assert len(StorageLevel) == len(PressureLevel)


def test_unknown_stays_unknown():
    assert officer_status(None) is None and officer_storage(None) is None and alert_codes(None) == ()


@pytest.mark.parametrize("request_", list(Request))
def test_every_request_becomes_the_trigger_of_the_same_name(request_):
    trigger = trigger_for(ControlRequest(request_, "button", "hold 1.0 s"))
    assert (trigger.action.name, trigger.origin, trigger.detail) == (request_.name, "button", "hold 1.0 s")
    assert isinstance(trigger.action, Action)


def test_alert_codes_keep_the_order_of_severity():
    alerts = derive_alerts({"storage": {"level": "warn"}}, battery_percent=5.0, display_fault="gone")
    assert alert_codes(alerts) == ("low_battery", "display_fault", "storage_low")


@pytest.mark.parametrize("pre_recording", [False, True])
def test_pre_recording_reaches_the_officer_status(pre_recording):
    status = dataclasses.replace(recorder_status(State.MIRROR), pre_recording=pre_recording)
    assert officer_status(status).pre_recording is pre_recording
