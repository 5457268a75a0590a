"""Storage watch: the recorder's defence against a full card.

A :class:`StorageMonitor` thread measures free space every few seconds. On every change of level it
logs, writes an audit line and publishes the snapshot (display, telemetry). At CRITICAL it stops a
running recording, so the segment in progress is finished and sealed while there is still room for
it; the recorder's storage gate then refuses new recordings with the same reason. Nothing is ever
deleted to make room: only the back office's receipts free space.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from evidence import audit
from .diskspace import DiskPressure, DiskSnapshot, PressureLevel
from base.errors import StorageError
from .recorder import Action, Trigger

logger = logging.getLogger(__name__)


class StorageMonitor(threading.Thread):
    """Measures the spool's file system every ``interval`` seconds and acts on level changes."""

    def __init__(self, disk: DiskPressure, *, is_recording: Callable[[], bool], trigger: Callable[[Trigger], None],
                 audit_log=None, on_snapshot: Callable[[DiskSnapshot], None] | None = None, interval: float = 5.0):
        super().__init__(name="StorageMonitorThread", daemon=True)
        self.disk = disk
        self.is_recording = is_recording
        self.trigger = trigger
        self.audit_log = audit_log
        self.on_snapshot = on_snapshot
        self.interval = interval
        self._stopping = threading.Event()
        #: Latest measurement (immutable), or None before the first one.
        self.snapshot: DiskSnapshot | None = None
        #: Set when the file system cannot be measured at all (a fault for display and telemetry).
        self.fault: StorageError | None = None

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self.join(timeout)

    def run(self) -> None:
        while True:
            self.check()
            if self._stopping.wait(self.interval):
                return

    def check(self) -> DiskSnapshot | None:
        """One measurement and its consequences; also callable directly (tests, start-up)."""
        try:
            snapshot = self.disk.measure()
        except StorageError as exc:
            if self.fault is None:
                logger.error("%s", exc)
            self.fault = exc
            return None
        self.fault = None
        previous, self.snapshot = self.snapshot, snapshot
        changed = previous is None or previous.level is not snapshot.level
        if changed and (previous is not None or snapshot.level is not PressureLevel.OK):
            log = logger.error if snapshot.level is PressureLevel.CRITICAL else logger.warning
            log("%s", snapshot.reason)
            if self.audit_log is not None:
                self.audit_log.append(audit.STORAGE_PRESSURE, level=snapshot.level.value,
                                      free_bytes=snapshot.free_bytes, reason=snapshot.reason)
        if snapshot.level is PressureLevel.CRITICAL and self.is_recording():
            logger.error("stopping the recording: its last segment is sealed while there is room for it")
            self.trigger(Trigger(Action.STOP, "storage", snapshot.reason))
        if self.on_snapshot is not None:
            self.on_snapshot(snapshot)
        return snapshot
