"""The uplink's card I/O, on its own thread, so the network side never waits for the SD card.

Opening a segment (reading its 12.5 MB once for the SHA-256 check, which also leaves it in the page
cache for the chunk reads that follow), recording a receipt, deleting a segment and writing audit
lines all end in reads or fsyncs that take milliseconds to tens of milliseconds on an SD card. Done on
the uplink thread they stall the MQTT window (measured: a 70 ms gap per segment at 100 MB/s). :class:`SpoolWorker` does them in order from a queue and reports each outcome back into the
uplink's event queue as an immutable event. The order matters for one rule only and is kept by the
single queue: a segment is acknowledged (``Spool.acknowledge``, durable) before it is purged.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from typing import Protocol

from evidence import audit
from base.errors import BodycamError
from evidence.spool import CorruptSegmentError, SegmentNotFoundError, SegmentReader, Spool

logger = logging.getLogger(__name__)

_STOP = object()


class AuditSink(Protocol):
    def append(self, event: str, /, **fields) -> object: ...


@dataclass(frozen=True, slots=True)
class Loaded:
    stem: str
    #: The segment opened for reading its chunks; whoever receives the event closes it.
    segment: SegmentReader | None
    #: "missing" (purged meanwhile), "corrupt" (the card returns other bytes), "error", or None.
    problem: str | None = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class Settled:
    """A receipt was recorded (and the segment purged, with ``on_ack``), or ``error`` says why not."""

    stem: str
    acknowledged: bool
    purged: bool
    error: str | None = None


@dataclass(frozen=True, slots=True)
class WorkerFault:
    message: str


class SpoolWorker(threading.Thread):
    """Executes the uplink's spool and audit work in order; results go to ``events``."""

    def __init__(self, spool: Spool, events: queue.Queue, *, purge_policy: str, audit_log: AuditSink | None):
        super().__init__(name="UplinkSpoolWorker", daemon=True)
        self.spool = spool
        self.events = events
        self.purge_policy = purge_policy
        self._audit = audit_log
        self._jobs: queue.Queue = queue.Queue()

    # -- requests (any thread) ---------------------------------------------------------------------------
    def load(self, stem: str) -> None:
        self._jobs.put(("load", stem))

    def settle(self, stem: str, ciphertext_sha256: str, receipt: bytes, audit_fields: dict) -> None:
        self._jobs.put(("settle", stem, ciphertext_sha256, receipt, audit_fields))

    def audit(self, event: str, **fields) -> None:
        self._jobs.put(("audit", event, fields))

    def purge_acknowledged(self) -> None:
        """With ``on_ack``: delete what was acknowledged but not deleted before a crash or restart."""
        self._jobs.put(("purge_acknowledged",))

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the queued work (receipts must be recorded), then end."""
        self._jobs.put(_STOP)
        self.join(timeout)
        if self.is_alive():
            logger.error("uplink spool worker did not finish within %.0f s", timeout)

    # -- the thread ----------------------------------------------------------------------------------------
    def run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is _STOP:
                return
            kind, *args = job
            getattr(self, f"_do_{kind}")(*args)

    def _do_load(self, stem: str) -> None:
        try:
            self.events.put(Loaded(stem, self.spool.open_segment(stem)))
        except SegmentNotFoundError:
            self.events.put(Loaded(stem, None, "missing"))
        except CorruptSegmentError as exc:
            self.events.put(Loaded(stem, None, "corrupt", str(exc)))
        except BodycamError as exc:
            self.events.put(Loaded(stem, None, "error", f"cannot read {stem} from the spool: {exc}"))

    def _do_settle(self, stem: str, sha: str, receipt: bytes, audit_fields: dict) -> None:
        try:
            self.spool.acknowledge(stem, sha, receipt)
        except SegmentNotFoundError:
            self.events.put(Settled(stem, False, False))  # purged meanwhile: nothing left to do
            return
        except BodycamError as exc:
            self.events.put(Settled(stem, False, False, f"could not record the receipt of {stem}: {exc}"))
            return
        self._do_audit(audit.SEGMENT_ACKNOWLEDGED, dict(stem=stem, ciphertext_sha256=sha, **audit_fields))
        purged, error = False, None
        if self.purge_policy == "on_ack":
            purged, error = self._purge(stem, sha)
        self.events.put(Settled(stem, True, purged, error))

    def _purge(self, stem: str, sha: str) -> tuple[bool, str | None]:
        try:
            self.spool.purge(stem)
        except BodycamError as exc:
            return False, f"could not delete acknowledged segment {stem}: {exc}"
        self._do_audit(audit.SEGMENT_PURGED, dict(stem=stem, ciphertext_sha256=sha, policy=self.purge_policy))
        return True, None

    def _do_purge_acknowledged(self) -> None:
        if self.purge_policy != "on_ack":
            return
        try:
            leftovers = self.spool.acknowledged()
        except BodycamError as exc:
            self.events.put(WorkerFault(f"cannot list acknowledged segments: {exc}"))
            return
        for info in leftovers:
            purged, error = self._purge(info.stem, info.ciphertext_sha256)
            self.events.put(Settled(info.stem, False, purged, error))

    def _do_audit(self, event: str, fields: dict) -> None:
        if self._audit is None:
            return
        try:
            self._audit.append(event, **fields)
        except BodycamError as exc:
            self.events.put(WorkerFault(f"audit log write failed for {event} {fields.get('stem')}: {exc}"))
