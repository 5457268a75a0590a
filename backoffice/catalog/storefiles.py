"""Removing an incident's files from the evidence store, leaving ``incident.tombstone.json`` in their place.

The tombstone file is written (durably) before anything is removed, so the store itself always says what
was there and why; a missing file counts as removed, so a repeated call finishes an interrupted one.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from base.durable import fsync_dir, write_atomically

logger = logging.getLogger(__name__)

TOMBSTONE_FILE = "incident.tombstone.json"


def remove_incident_files(directory: Path, tombstone: dict) -> int:
    """Write the tombstone, unlink each listed segment's ``.age`` and ``.manifest.json``; the count removed."""
    if not directory.is_dir():
        logger.warning("store directory %s is gone; recording the deletion anyway", directory)
        return 0
    write_atomically(directory / TOMBSTONE_FILE, json.dumps(tombstone, indent=1, sort_keys=True).encode() + b"\n")
    removed = 0
    for seg in tombstone["segments"]:
        for name in (f"{seg['stem']}.age", f"{seg['stem']}.manifest.json"):
            try:
                (directory / name).unlink()
                removed += 1
            except FileNotFoundError:
                pass
    fsync_dir(directory, "the incident directory")
    return removed
