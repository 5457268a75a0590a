"""The receiver's side of the catalog: record each stored segment before its receipt, reconcile at start.

The receiver calls :class:`CatalogRecorder` from its acknowledging thread (``Receiver.on_stored``). Any failure
(database down, audit log unwritable) becomes a :class:`~backoffice.store.StoreError`: the receipt is then
withheld, the device offers the segment again later, and the recorder runs again (it is idempotent). So a
segment is never acknowledged without its catalog row, and a crash between the store's commit and the
catalog is repaired by :func:`.ingest.reconcile` when the receiver starts.
"""

from __future__ import annotations

import logging
from pathlib import Path

from django.db import DatabaseError, close_old_connections, connection

from base.errors import BodycamError
from evidence.keys import DevicePublicKey
from evidence.seal import Manifest

from ..store import StoreError, incident_dir_name
from .ingest import record_segments
from .models import Segment

logger = logging.getLogger(__name__)


def incident_path(manifest: Manifest) -> Path:
    """Where the store keeps the manifest's incident, relative to the store (the store's own naming rule)."""
    return Path(manifest.site) / manifest.device_id / incident_dir_name(manifest.incident_id)


class CatalogRecorder:
    """``Receiver.on_stored``: the catalog rows (and office audit lines) of newly stored segments, a few at once.

    ``devices`` are the keys the receiver checks offers with: it stores only a segment whose manifest
    verified with one of them, so the recorder does not verify it again (one Ed25519 verification a
    segment, about a sixth of the catalog's CPU under load; docs/BENCHMARKS.md).
    """

    def __init__(self, office, devices: dict[str, DevicePublicKey]):
        self.office = office
        self.devices = devices

    def open(self) -> None:
        """Connect the calling thread to the database and ask it once, so that the first segment does not
        wait for that (a PostgreSQL connection with its authentication, Django's first query in a thread)
        and a database that cannot be reached is reported when the receiver starts."""
        try:
            close_old_connections()
            Segment.objects.filter(stem="").exists()
        except DatabaseError as exc:
            raise StoreError(f"catalog: the database cannot be reached ({exc}); receipts wait until it can") from exc

    def __call__(self, manifests: list[Manifest]) -> None:
        stored = [(m, incident_path(m)) for m in manifests]
        try:
            try:
                record_segments(self.office, stored, self.devices, signatures_checked=True)
            except DatabaseError:
                # The connection lives as long as the thread, and the server may have closed it meanwhile
                # (a restart, an idle timeout): a new one, and once more (the batch is all or nothing and
                # idempotent). Checked after a failure, not before each batch, where Django's health
                # check is one more round trip to the server for every receipt.
                connection.close()
                record_segments(self.office, stored, self.devices, signatures_checked=True)
        except (DatabaseError, BodycamError) as exc:
            stems = ", ".join(m.stem for m in manifests)
            raise StoreError(f"catalog: {stems} stored but could not be recorded ({exc}); "
                             "the receipt waits for the next offer") from exc
