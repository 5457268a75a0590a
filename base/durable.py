"""Durable files: what is written survives a power cut whole, or is not there at all.

The one implementation of "tmp file in the same directory → write → fsync → rename → fsync the
directory" for everything that must survive a crash (chain head, manifests, keys, receipts, the
store's files, open events) and, without the fsyncs, for files that only need to be replaced
atomically (the status file in /run).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

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


def write_atomically(path: str | os.PathLike, data: bytes, *, mode: int = 0o644, durable: bool = True,
                     replace: bool = True, sync_dir: bool = True, tmp: str | os.PathLike | None = None,
                     what: str | None = None) -> None:
    """Put ``data`` at ``path`` so that readers (and, if ``durable``, the disk after a crash) see the old
    bytes or the new ones, never a part.

    The file has ``mode`` from its first byte, whatever the umask (no window where a key is readable).
    ``replace=False`` refuses an existing ``path`` (``FileExistsError``) without ever clobbering it.
    ``sync_dir=False`` leaves the directory's fsync to a caller that commits several files at once.
    ``tmp`` names the temporary file (default: hidden, unique per process and thread, same directory).
    OS errors become :class:`~base.errors.StorageError` naming ``what`` was written; the tmp file is
    removed on any failure.
    """
    path = Path(path)
    what = what or f"writing {path.name}"
    tmp = Path(tmp) if tmp is not None else path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    except OSError as exc:
        raise storage_error(exc, tmp, what) from exc
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        if replace:
            os.rename(tmp, path)
        else:
            os.link(tmp, path)  # fails on an existing path: never clobbers
            os.unlink(tmp)
    except FileExistsError:
        _remove(tmp)
        raise
    except OSError as exc:
        _remove(tmp)
        raise storage_error(exc, path, what) from exc
    except BaseException:
        _remove(tmp)
        raise
    if durable and sync_dir:
        fsync_dir(path.parent, what)


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
