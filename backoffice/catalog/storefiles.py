"""Removing an incident's files from the evidence store, leaving ``incident.tombstone.json`` in their place.

The tombstone file is written (durably) before anything is removed, so the store itself always says what
was there and why; a missing file counts as removed, so a repeated call finishes an interrupted one (and
removes the temporary file of a tombstone whose writing was killed).
"""

from __future__ import annotations

import logging
from pathlib import Path

from base.durable import fsync_dir, write_atomically
from evidence.tombstone import FILE_NAME as TOMBSTONE_FILE

logger = logging.getLogger(__name__)


def remove_incident_files(directory: Path, tombstone: bytes, segments: list[dict]) -> int:
    """Write the signed ``tombstone`` (:mod:`evidence.tombstone`), unlink each listed segment's ``.age`` and
    ``.manifest.json``; the number of files removed."""
    if not directory.is_dir():
        logger.warning("store directory %s is gone; recording the deletion anyway", directory)
        return 0
    for stale in directory.glob(f".{TOMBSTONE_FILE}.*.tmp"):  # an earlier run killed while writing it
        stale.unlink(missing_ok=True)
    write_atomically(directory / TOMBSTONE_FILE, tombstone)
    removed = 0
    for seg in segments:
        for name in (f"{seg['stem']}.age", f"{seg['stem']}.manifest.json"):
            try:
                (directory / name).unlink()
                removed += 1
            except FileNotFoundError:
                pass
    fsync_dir(directory, "the incident directory")
    return removed
