"""What the officer interface reads about the device, in its own types.

The display, the LED and the buttons need only a little of the recorder's and the disk's state: the
recording state, since when it records, how full the card is. They read it as these small immutable
values, so ``ui`` never imports the program that assembles it; ``agent.officer`` translates the
recorder's and the disk monitor's snapshots into them. The enums carry the same values as the
agent's, so a translation is a lookup by value.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class OfficerState(str, enum.Enum):
    """The recorder's state as the officer sees it."""

    STANDBY = "standby"
    MIRROR = "mirror"
    RECORDING = "recording"
    FINISHING = "finishing"  # stopped by the officer, still recording the post-event time

    @property
    def recording(self) -> bool:
        return self in (OfficerState.RECORDING, OfficerState.FINISHING)


class StorageLevel(enum.Enum):
    """How full the card is: OK, low (WARN) or too full to record (CRITICAL)."""

    OK = "ok"
    WARN = "warn"
    CRITICAL = "critical"


@dataclass(frozen=True)
class OfficerStatus:
    """The recorder's latest state for display, LED and buttons."""

    state: OfficerState
    recording_since: float | None = None  # wall-clock seconds; None when not recording
    #: The pre-event ring is filling now (outside a recording): the display says VORAUFNAHME.
    pre_recording: bool = False


@dataclass(frozen=True)
class Storage:
    """The card's fill level for the storage icon."""

    level: StorageLevel
    used: float  # 0..1


@dataclass(frozen=True)
class OfficerAssignment:
    """Officer check-out as the display shows it: the assigned officer's short code, or nobody."""

    officer: str | None  # the pseudonymous id; None: "nicht zugeordnet"
    notice: str | None = None  # a text key shown for a few seconds instead ("badge_unknown")
