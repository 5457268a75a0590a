"""How full the SD card is, and what its OS errors mean in words an operator can act on.

:class:`DiskPressure` turns a ``statvfs`` reading into an immutable :class:`DiskSnapshot` (level,
free and total bytes, a reason sentence) for the recorder, the display and telemetry. At CRITICAL the
recorder finishes the current segment and refuses new recordings; this module only measures and
never deletes anything, so evidence cannot be lost by a measurement.

The storage errors it reports are :mod:`base.errors`' (the spool and the audit log raise the same).
"""

from __future__ import annotations

import enum
import logging
import os
from dataclasses import dataclass
from typing import Callable

from base.errors import StorageError, storage_error  # noqa: F401  (StorageError: re-exported)

logger = logging.getLogger(__name__)

MIB = 1024 * 1024


class PressureLevel(enum.Enum):
    """Ordered levels; compare with :attr:`rank` (OK < WARN < CRITICAL)."""

    OK = "ok"
    WARN = "warn"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {PressureLevel.OK: 0, PressureLevel.WARN: 1, PressureLevel.CRITICAL: 2}


@dataclass(frozen=True, slots=True)
class DiskSnapshot:
    """One measurement, safe to hand to any thread (display, telemetry, recorder)."""

    level: PressureLevel
    free_bytes: int
    total_bytes: int
    reason: str
    path: str

    @property
    def free_mib(self) -> float:
        return self.free_bytes / MIB

    @property
    def used_fraction(self) -> float:
        """Fraction of the file system in use as the agent sees it (0.0 when the size is unknown)."""
        if self.total_bytes <= 0:
            return 0.0
        return 1.0 - min(self.free_bytes, self.total_bytes) / self.total_bytes

    def as_dict(self) -> dict:
        """The snapshot as plain JSON-able values for telemetry."""
        return {"level": self.level.value, "free_bytes": self.free_bytes, "total_bytes": self.total_bytes,
                "reason": self.reason, "path": self.path}


StatvfsFunc = Callable[[str], os.statvfs_result]


class DiskPressure:
    """Classifies free space on the file system holding ``path`` against two thresholds.

    Free space is ``f_bavail * f_frsize``: what an unprivileged process may still write. The blocks
    reserved for root do not count, because the agent does not run as root and cannot use them.
    ``statvfs`` is injectable so tests can play any card size and fill level. Stateless apart from
    its settings, so any thread may call :meth:`measure`.
    """

    def __init__(self, path: str | os.PathLike, warn_free_mib: float, critical_free_mib: float,
                 statvfs: StatvfsFunc = os.statvfs):
        self.path = os.fspath(path)
        self.warn_free_bytes = int(warn_free_mib * MIB)
        self.critical_free_bytes = int(critical_free_mib * MIB)
        self._statvfs = statvfs

    def measure(self) -> DiskSnapshot:
        """Read the file system now; raises :class:`StorageError` if it cannot be read at all."""
        try:
            st = self._statvfs(self.path)
        except OSError as exc:
            raise storage_error(exc, self.path, "measuring free space") from exc
        free = st.f_bavail * st.f_frsize
        total = st.f_blocks * st.f_frsize
        level, reason = self._classify(free, total)
        return DiskSnapshot(level=level, free_bytes=free, total_bytes=total, reason=reason, path=self.path)

    def _classify(self, free: int, total: int) -> tuple[PressureLevel, str]:
        have = f"{_mib(free)} free of {_mib(total)} on {self.path}"
        if free < self.critical_free_bytes:
            return PressureLevel.CRITICAL, (
                f"storage critical: {have}, below the {_mib(self.critical_free_bytes)} minimum; "
                "the current segment is finished and no new recording can start until the backlog "
                "is uploaded or space is freed")
        if free < self.warn_free_bytes:
            return PressureLevel.WARN, (
                f"storage low: {have}, below the {_mib(self.warn_free_bytes)} warning level; "
                "connect the device so the backlog can be uploaded")
        return PressureLevel.OK, f"storage ok: {have}"


def _mib(n: int) -> str:
    return f"{n / MIB:.0f} MiB"
