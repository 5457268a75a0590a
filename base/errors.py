"""The project's exception hierarchy, and OS errors mapped to it.

Every error a user can meet derives from :class:`BodycamError` and carries a sentence that says what
is wrong and what to do; the command line prints that sentence instead of a traceback.
"""

from __future__ import annotations

import errno
import os


class BodycamError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(BodycamError):
    """The configuration file is missing, unreadable or holds a bad value."""


class CameraError(BodycamError):
    """The camera could not be opened or stopped delivering frames."""


class CameraUnavailableError(CameraError):
    """The requested camera backend cannot run on this machine (e.g. picamera2 off a Pi)."""


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
