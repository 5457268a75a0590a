"""``bodycam-office receiver``: run the back office's receiver (its receipt key comes from ``bodycam keys receiver``).

Thin, like evidence.cli: exit 0 on a clean stop, 1 when the receiver failed while running, 2 for
bad input (config, key files, TLS files). Errors are one sentence on stderr, never a traceback.
"""

from __future__ import annotations

import gc
import logging
import signal
import sys
import threading
import time

from base.errors import BodycamError
from base.sdnotify import Notifier, watchdog_interval
from evidence.keys import load_device_public_keys, load_receipt_signing_key

from .receiver import STALL_S, Receiver, ReceiverThread, receiver_link
from .settings import EXAMPLE_RECEIVER_TOML, ReceiverConfig, load_receiver_config
from .store import EvidenceStore

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def register(subparsers) -> None:
    """Add ``receiver`` to the ``bodycam`` command's subparsers."""
    p = subparsers.add_parser("receiver", help="back office: receive, verify and store segments, sign receipts")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--config", metavar="FILE", help="receiver config (TOML; see --example)")
    group.add_argument("--example", action="store_true", help="print an example receiver config with every key")
    p.add_argument("--check", action="store_true", help="validate the config and the key files, then exit")
    p.set_defaults(func=cmd_receiver)


def cmd_receiver(args) -> int:
    if args.example:
        sys.stdout.write(EXAMPLE_RECEIVER_TOML)
        return EXIT_OK
    try:
        cfg = load_receiver_config(args.config)
        service = ReceiverService(cfg)
    except BodycamError as exc:
        print(f"bodycam: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.check:
        print(f"{args.config}: OK (receiver {cfg.receiver.id}, {len(service.receiver.devices)} enrolled device "
              f"key(s), broker {cfg.mqtt.host}:{cfg.mqtt.port})")
        return EXIT_OK
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
    return service.run(stop)


def open_catalog(store_dir, devices):
    """The catalog's office (Django set up from the environment) with the receiver's store."""
    from django.conf import settings

    from .catalog.office import open_office
    from .office.bootstrap import setup_django

    setup_django()
    return open_office(store_dir, settings.BODYCAM_OFFICE_KEY, settings.BODYCAM_AUDIT_LOG)


def catalog_recorder(office, devices):
    from .catalog.receiving import CatalogRecorder

    return CatalogRecorder(office, devices)


class ReceiverService:
    """Builds the receiver from its config; :meth:`run` until ``stop`` is set.

    Under systemd (``Type=notify``) it says READY=1 once its threads run and feeds the watchdog only
    while :meth:`ReceiverThread.health` says the work moves; a receiver stuck for good (#11.5: three
    receivers at 0 % CPU for hours) is then restarted by systemd instead of waiting for someone to notice.
    """

    def __init__(self, cfg: ReceiverConfig, *, stall_s: float = STALL_S):
        r = cfg.receiver
        self.cfg = cfg
        devices = load_device_public_keys(r.devices)
        key = load_receipt_signing_key(r.receipt_key)
        store = EvidenceStore(r.store_dir, r.incoming_dir)
        self.receiver = Receiver(store, devices, key, r.id, max_segment_bytes=int(r.max_segment_mib * 2**20),
                                 max_chunk_bytes=r.max_chunk_kib * 1024)
        self.office = None
        if r.catalog:
            self.office = open_catalog(store.root, devices)
            self.receiver.on_stored = catalog_recorder(self.office, devices)
        self.link = receiver_link(cfg.mqtt, r.id, r.queue_messages)
        self.thread = ReceiverThread(self.link, self.receiver, share_group=r.share_group,
                                     partial_max_age_s=r.partial_max_age_h * 3600, gap_report_s=r.gap_report_s,
                                     summary_s=r.summary_s, stall_s=stall_s)

    def start(self) -> None:
        self.thread.start()
        self.link.start()

    def stop(self) -> None:
        self.thread.begin_stop()
        self.link.stop()
        self.thread.stop()
        if self.office is not None:
            self.office.close()

    def reconcile_catalog(self) -> None:
        """Catalog what the store holds and the catalog lacks (a crash between storing and recording)."""
        if self.office is not None:
            from .catalog.ingest import reconcile

            report = reconcile(self.office, self.receiver.devices)
            logger.info("%s", report.summary())
            for problem in report.problems:
                logger.error("catalog: %s", problem)

    def run(self, stop: threading.Event) -> int:
        notifier = Notifier()
        feed_every = watchdog_interval()
        self.reconcile_catalog()
        # What is loaded by now (Django and the catalog's models with the catalog on) lives as long as the
        # process: out of the cyclic collector's sight, its full collections no longer walk it each time.
        gc.freeze()
        self.start()
        r = self.cfg.receiver
        logger.info("receiver %s running (%d enrolled device keys, store %s, share group %r)", r.id,
                    len(self.receiver.devices), r.store_dir, r.share_group or None)
        notifier.ready(f"{r.id}: starting")
        code, last_feed, said, stalled = EXIT_OK, 0.0, None, False
        try:
            while not stop.wait(min(1.0, feed_every or 1.0)):
                if not self.thread.is_alive():
                    logger.critical("receiver stopped: %s", self.thread.fault)
                    code = EXIT_FAILED
                    break
                ok, why = self.thread.health()
                now = time.monotonic()
                if ok and feed_every and now - last_feed >= feed_every:
                    notifier.watchdog()
                    last_feed = now
                if why != said:
                    notifier.status(f"{r.id}: {why}")
                    said = why
                if ok == stalled:
                    stalled = not ok
                    if stalled:
                        logger.error("receiver %s stalled: %s; not feeding the watchdog", r.id, why)
                    else:
                        logger.warning("receiver %s moves again (%s)", r.id, why)
        finally:
            notifier.stopping()
            self.stop()
            notifier.close()
        return code
