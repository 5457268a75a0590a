"""Durable files: what is written survives a power cut, or is not there at all."""

from __future__ import annotations

import os

from .errors import storage_error


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
