"""A back office on this machine, for the demo and benchmarks: throw-away broker, PKI and one receiver.

It wires the real parts (mosquitto with client certificates and the ACL of docs/BROKER.md, the real
receiver with its evidence store and receipt key) so that a laptop runs the complete chain a city runs
across several machines. As the demo's program (:func:`serve`) it also keeps the evidence catalog, as a
receiver with ``catalog = true`` does: a SQLite catalog in ``<root>/office`` (migrated at start), every
stored segment recorded before its receipt, so the review app shows the demo's real uploads.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from comms.settings import MqttSettings
from evidence.keys import generate_receipt_key, load_device_public_keys, load_receipt_signing_key

from .localbroker import HOST, MOSQUITTO, Broker, Pki
from .receiver import Receiver, ReceiverThread, receiver_link
from .store import EvidenceStore, StoreError

RECEIVER_ID = "bo-recv-1"

logger = logging.getLogger(__name__)


def client_settings(creds, port: int, **kw) -> MqttSettings:
    return MqttSettings(**{**dataclasses.asdict(MqttSettings()), "host": HOST, "port": port,
                           "ca_file": str(creds.ca), "cert_file": str(creds.cert), "key_file": str(creds.key),
                           "keepalive_s": 10, "reconnect_min_s": 0.2, "reconnect_max_s": 2.0, **kw})


class LocalBackOffice:
    """Broker + receiver under ``root``; ``device_settings(id)`` gives a device its MQTT settings.

    ``catalog``: also keep the evidence catalog (:class:`LocalCatalog`). It configures Django for the whole
    process, so only a process of its own may ask for it (the demo's, :func:`serve`).
    """

    def __init__(self, root: Path, device_pubs: list[Path], *, catalog: bool = False):
        self.root = Path(root)
        self.pki = Pki(self.root / "pki")
        self.broker = Broker(self.root / "broker", self.pki, [RECEIVER_ID])
        keys = self.root / "receipt-keys"
        if not (keys / "receipt.key").exists():
            keys.mkdir(parents=True, exist_ok=True)
            generate_receipt_key(keys)
        self.receipt_pub = keys / "receipt.pub"
        self.store = EvidenceStore(self.root / "store", self.root / "incoming")
        self._receipt_key = load_receipt_signing_key(keys / "receipt.key")
        self._devices = load_device_public_keys(device_pubs)
        self.catalog = LocalCatalog(self.root / "office", self.store.root, self._devices) if catalog else None
        self.link = self.thread = None

    def start(self) -> "LocalBackOffice":
        if self.catalog is not None:
            self.catalog.start()  # opens while the broker, the receiver and the device start
        self.broker.start()
        creds = self.pki.issue(RECEIVER_ID)
        receiver = Receiver(self.store, self._devices, self._receipt_key, RECEIVER_ID,
                            max_segment_bytes=256 << 20, max_chunk_bytes=1 << 20)
        if self.catalog is not None:
            receiver.on_stored = self.catalog.record
        self.link = receiver_link(client_settings(creds, self.broker.port), RECEIVER_ID)
        self.thread = ReceiverThread(self.link, receiver)
        self.thread.start()
        self.link.start()
        deadline = time.monotonic() + 15
        while not self.thread.connected.is_set():
            if time.monotonic() > deadline:
                raise RuntimeError("the local receiver did not connect to the local broker")
            time.sleep(0.05)
        return self

    def device_settings(self, device_id: str) -> MqttSettings:
        return client_settings(self.pki.issue(device_id), self.broker.port)

    def stop(self) -> None:
        if self.thread is not None:
            self.thread.begin_stop()
        if self.link is not None:
            self.link.stop()
        if self.thread is not None:
            self.thread.stop()
        self.broker.stop()
        if self.catalog is not None:
            self.catalog.close()


class LocalCatalog:
    """The evidence catalog of the local office: SQLite, office key and audit log in ``data``.

    :meth:`start` opens it in a thread of its own, so the broker, the receiver and the device start
    meanwhile (Django's start and a first migration take about a second); the receiver's ``on_stored``
    (:meth:`record`) waits for it, so even the demo acknowledges no segment before its catalog row.
    Opening points Django at ``data`` (``BODYCAM_OFFICE_DATA``; a ``DATABASE_URL`` of the caller's is
    ignored: the demo keeps its own), makes the office key if there is none, migrates, and catalogs what
    the store already holds (segments of earlier demo runs). Without Django (a device-only install) or when
    opening fails, the office runs without a catalog and :attr:`problem` says why (also logged).
    """

    #: How long a stored segment waits for the catalog to open before its receipt is withheld (and the
    #: device offers it again).
    OPEN_WAIT_S = 60.0

    def __init__(self, data: Path, store_dir: Path, devices):
        self.data, self.store_dir, self.devices = data, store_dir, devices
        self.office = None
        self.problem = "" if importlib.util.find_spec("django") else (
            "Django is not installed (the 'office' extra); the demo runs without the catalog")
        self._recorder = None
        self._opened = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def database(self) -> Path:
        return self.data / "catalog.sqlite3"

    def start(self) -> None:
        if self.problem:
            self._opened.set()
            return
        self._thread = threading.Thread(target=self._open, name="CatalogOpener", daemon=True)
        self._thread.start()

    def wait_open(self, timeout: float | None = None) -> bool:
        """True once opening ended (with a catalog, or with :attr:`problem` set)."""
        return self._opened.wait(timeout)

    def _open(self) -> None:
        try:
            self._migrate_and_reconcile()
        except Exception as exc:  # noqa: BLE001 -- not swallowed: logged, and shown by the demo as 'problem'
            logger.exception("the local catalog could not be opened")
            self.problem = f"the catalog could not be opened: {exc}"
            self.close()
        finally:
            self._opened.set()

    def _migrate_and_reconcile(self) -> None:
        from evidence.keys import generate_office_key

        os.environ.update(BODYCAM_OFFICE_DATA=str(self.data), BODYCAM_OFFICE_STORE=str(self.store_dir))
        os.environ.pop("DATABASE_URL", None)
        if not (self.data / "keys" / "office.key").exists():
            (self.data / "keys").mkdir(parents=True, exist_ok=True)
            generate_office_key(self.data / "keys")
        from .receiver_cli import catalog_recorder, open_catalog

        office = open_catalog(self.store_dir, self.devices)  # sets Django up
        from django.core.management import call_command
        from django.db import connection

        from .catalog.ingest import reconcile

        try:
            call_command("migrate", interactive=False, verbosity=0)
            report = reconcile(office, self.devices)
        except BaseException:
            office.close()
            raise
        finally:
            connection.close()  # this thread ends; the receiver's thread opens its own
        logger.info("local catalog %s: %s", self.database, report.summary())
        self.office, self._recorder = office, catalog_recorder(office, self.devices)

    def record(self, manifests) -> None:
        """The receiver's ``on_stored``: waits for the catalog to be open, then records the segments."""
        if not self._opened.wait(self.OPEN_WAIT_S):
            raise StoreError(f"catalog: still opening after {self.OPEN_WAIT_S:g} s; the receipts of "
                             f"{', '.join(m.stem for m in manifests)} wait for the next offer")
        if self._recorder is not None:
            self._recorder(manifests)

    def close(self) -> None:
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(self.OPEN_WAIT_S)
        if self.office is not None:
            self.office.close()
            self.office = None


def serve(root: Path, device_pubs: list[Path], device_ids: list[str], out=None) -> int:
    """Run a local back office until standard input closes (or SIGTERM): the demo's second program.

    Prints one JSON line when ready: the broker's port, the receipt key and store, and for each of
    ``device_ids`` the certificate paths it connects with; ``{"error": ...}`` when it cannot start.
    """
    out = out or sys.stdout
    if not Path(MOSQUITTO).exists():
        print(json.dumps({"error": "mosquitto is not installed (apt install mosquitto, as .ci/dev does)"}),
              file=out, flush=True)
        return 1
    office = LocalBackOffice(root, device_pubs, catalog=True).start()
    try:
        devices = {}
        for device_id in device_ids:
            creds = office.pki.issue(device_id)
            devices[device_id] = {"ca_file": str(creds.ca), "cert_file": str(creds.cert), "key_file": str(creds.key)}
        catalog = office.catalog  # still opening, maybe; a failure is logged (stderr, the demo's terminal)
        print(json.dumps({"host": HOST, "port": office.broker.port, "receipt_pub": str(office.receipt_pub),
                          "store": str(office.store.root), "devices": devices,
                          "catalog": None if catalog.problem else str(catalog.database),
                          "office_data": str(catalog.data), "catalog_problem": catalog.problem}),
              file=out, flush=True)
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        threading.Thread(target=lambda: (sys.stdin.read(), done.set()), name="StdinWatch", daemon=True).start()
        done.wait()
    finally:
        office.stop()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m backoffice.localoffice",
                                     description="A local back office (broker + receiver) for the demo.")
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--device-pub", action="append", required=True, type=Path)
    parser.add_argument("--device-id", action="append", default=[])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="office: %(levelname)s %(name)s: %(message)s")
    sys.exit(serve(args.root, args.device_pub, args.device_id))
