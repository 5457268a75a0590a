"""The officer interface's side of the agent: its snapshots in ui's types, ui's requests as triggers.

``ui`` never imports the agent (see :mod:`ui.state`); this is the one place that knows both. The
runtime wires these functions between the recorder, the disk monitor and the alert list on one side
and the display, LED and buttons on the other. The ui enums carry the agent's values, so each
translation is a lookup by value and adds no decisions of its own.
"""

from __future__ import annotations

from typing import Iterable

from ui.controls import ControlRequest
from ui.state import OfficerState, OfficerStatus, Storage, StorageLevel

from .alerts import Alert
from .diskspace import DiskSnapshot
from .recorder import Action, RecorderStatus, Trigger


def officer_status(status: RecorderStatus | None) -> OfficerStatus | None:
    """What display, LED and buttons need of the recorder's snapshot (None: no recorder yet)."""
    if status is None:
        return None
    return OfficerStatus(OfficerState(status.state.value), status.recording_since, status.pre_recording)


def officer_storage(disk: DiskSnapshot | None) -> Storage | None:
    """The storage icon's facts from the disk monitor's snapshot (None: not measured yet)."""
    if disk is None:
        return None
    return Storage(StorageLevel(disk.level.value), disk.used_fraction)


def alert_codes(alerts: Iterable[Alert] | None) -> tuple[str, ...]:
    """The codes of :func:`agent.alerts.derive_alerts`' list, in its order (most severe first)."""
    return tuple(alert.code for alert in alerts or ())


def trigger_for(request: ControlRequest) -> Trigger:
    """The recorder trigger for a request from the button or the trigger input."""
    return Trigger(Action(request.action.value), request.origin, request.detail)
