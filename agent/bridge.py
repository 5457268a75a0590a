"""The recorder in comms' terms and back: comms defines its own command and event types so that it never
imports the device program; these translations are the one place that knows both sides."""

from __future__ import annotations

from comms.commands import RecorderRequest
from comms.events import RecordingEvent

from .recorder import Action, StateChanged, Trigger

_ACTIONS = {RecorderRequest.START: Action.START, RecorderRequest.STOP: Action.STOP,
            RecorderRequest.MIRROR_ON: Action.MIRROR_ON, RecorderRequest.MIRROR_OFF: Action.MIRROR_OFF}


def command_trigger(request: RecorderRequest, command_id: str) -> Trigger:
    """A remote command's request as a recorder trigger: origin "command", the command's id as its detail
    (events name the origin, the audit log the id)."""
    return Trigger(_ACTIONS[request], "command", command_id)


def recording_event(event) -> RecordingEvent | None:
    """A recorder state change as the events topic needs it; the recorder's other events (ignored
    triggers, lost frames) are not events there."""
    if not isinstance(event, StateChanged):
        return None
    return RecordingEvent(state=event.state.value, recording=event.state.recording,
                          was_recording=event.previous.recording, incident_id=event.incident_id,
                          trigger=event.trigger.origin if event.trigger else None, wall_time=event.wall_time)
