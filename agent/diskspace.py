"""How full the SD card is, and what its OS errors mean in words an operator can act on.

:class:`DiskPressure` turns a ``statvfs`` reading into an immutable :class:`DiskSnapshot` (level,
free and total bytes, a reason sentence) for the recorder, the display and telemetry. At CRITICAL the
recorder finishes the current segment and refuses new recordings; this module only measures and
never deletes anything, so evidence cannot be lost by a measurement.

The storage errors live here too because the spool and the audit log both write to the same card
and must say the same thing when it is full or locked (ENOSPC, EACCES, EROFS, EIO).
"""

from __future__ import annotations

import enum
import errno
import logging
import os
from dataclasses import dataclass
from typing import Callable

from .errors import BodycamError, ConfigError

logger = logging.getLogger(__name__)

MIB = 1024 * 1024


class StorageError(BodycamError):
    """The SD card (or the directory on it) refused a read or write."""

    def __init__(self, message: str, path: str | os.PathLike | None = None, errno_: int | None = None):
        super().__init__(message)
        self.path = None if path is None else os.fspath(path)
        self.errno = errno_


class StorageFullError(StorageError):
    """No space left: nothing more can be written until the uplink catches up or space is freed."""


class StoragePermissionError(StorageError):
    """The agent's user may not read or write a path it needs."""


def storage_error(exc: OSError, path: str | os.PathLike, action: str) -> StorageError:
    """Map an ``OSError`` from ``action`` on ``path`` to a :class:`StorageError` with a sentence.

    ``action`` is a short gerund phrase such as ``"writing segment dev1-0000000042"``. The caller
    raises the result ``from exc`` so the original errno stays in the traceback for developers.
    """
    path = os.fspath(path)
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return StorageFullError(
            f"storage full while {action} ({path}): free space on the SD card or let the uplink "
            "deliver the backlog; nothing already stored was touched", path, code)
    if code in (errno.EACCES, errno.EPERM):
        return StoragePermissionError(
            f"permission denied while {action}: the agent's user may not access {path}; "
            "check the owner and mode of the spool/audit directory (install.sh sets them)", path, code)
    if code == errno.EROFS:
        return StorageError(
            f"read-only file system while {action} ({path}): the SD card was remounted read-only, "
            "usually after an I/O error; replace or check the card", path, code)
    if code == errno.EIO:
        return StorageError(
            f"I/O error while {action} ({path}): the SD card may be failing; replace it after the "
            "backlog has been uploaded", path, code)
    if code == errno.ENOENT:
        return StorageError(f"{path} does not exist while {action}: is the SD card mounted?", path, code)
    reason = exc.strerror or str(exc)
    return StorageError(f"{reason} while {action} ({path})", path, code)



def fsync_dir(directory: str | os.PathLike, what: str) -> None:
    """Make renames and deletions in ``directory`` durable; errors name ``what`` was being synced."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise storage_error(exc, directory, f"syncing {what}") from exc

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
        if critical_free_mib < 0 or warn_free_mib < 0:
            raise ConfigError(f"storage thresholds must not be negative (warn_free_mib={warn_free_mib}, "
                              f"critical_free_mib={critical_free_mib})")
        if critical_free_mib > warn_free_mib:
            raise ConfigError(f"storage.critical_free_mib ({critical_free_mib}) must not exceed "
                              f"storage.warn_free_mib ({warn_free_mib})")
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
