"""The translations between the recorder and comms' own types (comms never imports the agent, #12)."""

from __future__ import annotations

import pytest

from agent.bridge import command_trigger, recording_event
from agent.recorder import Action, FramesLost, State, StateChanged, Trigger, TriggerIgnored
from comms.commands import RecorderRequest
from comms.events import RecordingEvent


@pytest.mark.parametrize("request_, action", [
    (RecorderRequest.START, Action.START), (RecorderRequest.STOP, Action.STOP),
    (RecorderRequest.MIRROR_ON, Action.MIRROR_ON), (RecorderRequest.MIRROR_OFF, Action.MIRROR_OFF),
])
def test_a_remote_request_becomes_a_trigger_from_the_command(request_, action):
    trigger = command_trigger(request_, "go-1")
    assert (trigger.action, trigger.origin, trigger.detail) == (action, "command", "go-1")


def test_every_remote_request_has_a_trigger():
    assert {command_trigger(r, "x").action for r in RecorderRequest} == {
        Action.START, Action.STOP, Action.MIRROR_ON, Action.MIRROR_OFF}


def test_a_state_change_becomes_a_recording_event():
    started = StateChanged(State.STANDBY, State.RECORDING, "inc-1", Trigger(Action.START, "button"), 1_700_000_000.0)
    assert recording_event(started) == RecordingEvent("recording", True, False, "inc-1", "button", 1_700_000_000.0)
    post = StateChanged(State.RECORDING, State.FINISHING, "inc-1", Trigger(Action.STOP, "command"), 1.0)
    assert recording_event(post) == RecordingEvent("finishing", True, True, "inc-1", "command", 1.0)
    ended = StateChanged(State.FINISHING, State.STANDBY, "inc-1", None, 2.0)  # the post-event time ran out
    assert recording_event(ended) == RecordingEvent("standby", False, True, "inc-1", None, 2.0)


def test_other_recorder_events_are_not_recording_events():
    assert recording_event(TriggerIgnored(Trigger(Action.START), State.RECORDING, "already recording")) is None
    assert recording_event(FramesLost(3, 3, State.STANDBY, None, 1.0)) is None
