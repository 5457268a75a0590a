"""One agent per state directory: two agents on one config would fork the evidence chain and the audit log.

``bodycam run`` takes an exclusive ``flock`` on ``<state_dir>/agent.lock`` before it opens anything
else and holds it until the process ends. The kernel releases the lock on any exit, SIGKILL and
power loss included, so a stale lock file never blocks a restart. The file holds the owner's PID,
only so that the refusal can name it. ``bodycam display-off`` takes the same lock, so it never
blanks a panel that a running agent is driving.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import Self

from base.errors import BodycamError

logger = logging.getLogger(__name__)

LOCK_FILE = "agent.lock"


class AlreadyRunningError(BodycamError):
    """Another process holds the state directory's lock; ``holder`` is its PID (or 'unknown')."""

    def __init__(self, message: str, holder: str, state_dir: str):
        super().__init__(message)
        self.holder, self.state_dir = holder, state_dir


class InstanceLock:
    """The held lock; :meth:`release` (or the end of the process) gives it up."""

    def __init__(self, fd: int, path: Path):
        self._fd: int | None = fd
        self.path = path

    @classmethod
    def acquire(cls, state_dir: str | os.PathLike) -> InstanceLock:
        """Lock ``state_dir`` (created if missing) for this process, without waiting.

        Raises :class:`AlreadyRunningError` naming the holder's PID when another process has it, and
        :class:`BodycamError` when the lock file cannot be opened.
        """
        path = Path(state_dir) / LOCK_FILE
        try:
            os.makedirs(state_dir, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise BodycamError(f"cannot open the lock file {path} ({exc.strerror}); the agent's user must be "
                               "able to write to the state directory") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise AlreadyRunningError(
                f"another bodycam agent is already running (PID {holder}) on the state directory {state_dir}; "
                "two agents would fork the evidence chain and the audit log. Stop it first "
                "('systemctl stop bodycam-agent')", holder, os.fspath(state_dir)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(fd, path)

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the last descriptor releases the flock

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


def _holder(fd: int) -> str:
    """The PID written by the lock's holder, or 'unknown' (it may not have written it yet)."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return "unknown"
    return text if text.isdigit() else "unknown"
