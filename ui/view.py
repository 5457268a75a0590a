"""What the display shows, as one immutable snapshot: :class:`OfficerView`.

The runtime owns the facts (recorder status, disk, battery, link, backlog, alerts, the camera's
preview) and hands them over in this package's own types (:mod:`ui.state`); :class:`ViewBuilder`
reads them through callables and folds them into a view, and :mod:`ui.screens` turns a view into
pixels. Alerts are not decided here: the codes come from the agent's alert list, the same one
telemetry and the status file show, so the display can never disagree with them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from .state import OfficerAssignment, OfficerState, OfficerStatus, Storage, StorageLevel
from .text import DEFAULT_LANGUAGE

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Health:
    """The status-row facts besides the recorder and the disk; None means unknown (no icon)."""

    battery_percent: int | None = None
    charging: bool = False
    link_up: bool | None = None
    backlog_segments: int = 0
    #: Sound is recorded with the pictures (audio switched on and the microphone working).
    sound: bool = False


@dataclass(frozen=True)
class OfficerView:
    """One frame's worth of facts.

    ``preview`` is the camera's latest low-resolution picture, never written to: its luma plane (2-D
    uint8), or its YUV420 planes ``(y, u, v)``, which the colour panels show in colour.
    """

    state: OfficerState
    now: float  # wall-clock seconds: the blink phase and the elapsed time come from it
    clock: str  # local time "HH:MM", formatted by the builder so screens stay free of time zones
    recording_since: float | None = None
    preview: np.ndarray | tuple[np.ndarray, np.ndarray, np.ndarray] | None = field(default=None, compare=False,
                                                                                   repr=False)
    battery_percent: int | None = None
    charging: bool = False
    storage_level: StorageLevel | None = None
    storage_used: float | None = None  # 0..1
    link_up: bool | None = None
    backlog_segments: int = 0
    alerts: tuple[str, ...] = ()  # alert codes (see ui.text), most severe first
    language: str = DEFAULT_LANGUAGE
    #: The device's id while the back office asks "which device is this?" (the identify command).
    identify: str | None = None
    #: Sound is recorded with the pictures: the recording screen shows the microphone mark.
    sound: bool = False
    #: Officer check-out: the assigned officer's short code (the pseudonymous id), shown in standby.
    officer: str | None = None
    #: A text key shown in standby instead of an officer: "unassigned" ("nicht zugeordnet") or, for a few
    #: seconds, "badge_unknown". Both None: check-out is not in use, and standby shows nothing of it.
    officer_note: str | None = None
    #: The pre-event ring is filling (outside a recording): standby and mirror say VORAUFNAHME.
    pre_recording: bool = False

    @property
    def elapsed_seconds(self) -> int:
        """Whole seconds since the recording started (0 when not recording)."""
        if self.recording_since is None or not self.state.recording:
            return 0
        return max(0, int(self.now - self.recording_since))


def _local_clock(now: float) -> str:
    return time.strftime("%H:%M", time.localtime(now))


class ViewBuilder:
    """Builds an :class:`OfficerView` on demand from the runtime's current facts.

    Every source is a callable returning an immutable snapshot (or None when unknown), read without
    locks: the display thread calls the builder and nothing here may block. ``alerts`` returns the
    current alert codes, most severe first; derive them where the status is gathered, not here at
    10 frames per second. A source that raises is logged once and treated as
    unknown, so a broken battery gauge cannot take the display down with it.
    """

    def __init__(self, status: Callable[[], OfficerStatus | None], *,
                 preview: Callable[[], np.ndarray | None] = lambda: None,
                 disk: Callable[[], Storage | None] = lambda: None,
                 health: Callable[[], Health | None] = lambda: None,
                 alerts: Callable[[], Iterable[str] | None] = lambda: (),
                 identify: Callable[[], str | None] = lambda: None,
                 assignment: Callable[[], OfficerAssignment | None] = lambda: None,
                 language: str = DEFAULT_LANGUAGE,
                 wall_clock: Callable[[], float] = time.time,
                 local_clock: Callable[[float], str] = _local_clock):
        self._sources = {"status": status, "preview": preview, "disk": disk, "health": health, "alerts": alerts,
                         "identify": identify, "assignment": assignment}
        self.language = language
        self._wall_clock = wall_clock
        self._local_clock = local_clock
        self._failing: set[str] = set()

    def _read(self, name: str):
        try:
            value = self._sources[name]()
        except Exception:
            if name not in self._failing:
                logger.exception("display source %r failed; shown as unknown", name)
                self._failing.add(name)
            return None
        self._failing.discard(name)
        return value

    def __call__(self) -> OfficerView:
        status = self._read("status")
        disk = self._read("disk")
        health = self._read("health") or Health()
        now = self._wall_clock()
        state = status.state if status is not None else OfficerState.STANDBY
        assignment = self._read("assignment")
        officer = assignment.officer if assignment is not None else None
        note = None if assignment is None else assignment.notice or (None if officer else "unassigned")
        return OfficerView(
            state=state, now=now, clock=self._local_clock(now),
            recording_since=status.recording_since if status is not None else None,
            preview=self._read("preview") if state is not OfficerState.STANDBY else None,
            battery_percent=health.battery_percent, charging=health.charging,
            storage_level=disk.level if disk is not None else None,
            storage_used=disk.used if disk is not None else None,
            link_up=health.link_up, backlog_segments=health.backlog_segments,
            alerts=tuple(self._read("alerts") or ()), language=self.language, identify=self._read("identify"),
            sound=health.sound, officer=officer, officer_note=note,
            pre_recording=status is not None and status.pre_recording and not status.state.recording)
