"""The back office's receiver: checks what devices send, stores it, and signs for it.

:class:`Receiver` turns one incoming message into the replies to send (no MQTT in it, so it is tested
directly); :class:`ReceiverThread` feeds it from an :class:`~comms.mqtt.MqttLink` and publishes the
replies. The receiver holds the enrolled devices' *public* keys and its own receipt-signing key; it
never holds a key that can decrypt a segment.

For an offer it checks, in order: the message format; the size limit; the manifest's structure; that
the signing key is enrolled (else ``unknown_device``); the signature (``bad_signature``); that topic,
manifest and offer name the same site, device, stem, seq, size and hash (``mismatch``); that the stem
is not stored with another manifest (``conflict``). For a chunk: framing, limits and its own hash, and
that it belongs to a recorded offer (``no_offer`` otherwise). A complete segment is assembled, checked
against the manifest's ciphertext hash, stored durably, placed in the chain (backoffice.store), recorded
in the catalog when there is one, and only then is the receipt signed, stored and sent (the first receipt
stored for a segment is the one every later offer gets). Every rejection is answered with a ``rejected`` status
and logged with its reason, at most once a minute per reason (a fleet with one bad setting must not
flood the journal); the periodic summary counts them all. The receiver keeps running.

Duplicates are harmless by construction: a chunk already held is dropped, an offer for a stored
segment is answered with the stored receipt, byte for byte.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Mapping

from base.errors import BodycamError
from evidence.keys import DevicePublicKey, ReceiptSigningKey
from evidence.seal import Manifest, ManifestError, SignatureError, verify_manifest

from comms import protocol
from comms.mqtt import ConnectFailed, Connected, Disconnected, Message, MqttLink, Published, Subscribed
from comms.protocol import Offer, ProtocolError, Route, Status
from comms.settings import MqttSettings
from evidence.receipts import sign_receipt
from .store import ConflictError, EvidenceStore, Partial, PartialGoneError, StoreError

logger = logging.getLogger(__name__)

_LOG_EVERY_S = 60.0
_OFFER_CACHE = 256
#: A receiver thread stuck this long (one message, one segment's storage, or a reply without PUBACK
#: while connected) is reported stalled, and the systemd watchdog is no longer fed.
STALL_S = 60.0
#: A segment counts as arriving while its chunks keep coming: the last one was written this recently.
#: A 256 KiB chunk takes 1-2 ms at LAN speed; a device on a slow link is not waited for (its next
#: segment is seconds away), and its receipts go out as before.
ARRIVING_S = 0.05


@dataclass(frozen=True, slots=True)
class Reply:
    topic: str
    payload: bytes


class _Rejection(Exception):
    def __init__(self, code: str, reason: str, stem: str | None = None):
        super().__init__(reason)
        self.code, self.reason, self.stem = code, reason, stem


#: Hands a complete segment to the assembler thread: (route, offer, manifest, partial).
Deferral = Callable[[Route, Offer, Manifest, Partial], None]
#: Hands a stored segment to the acknowledging thread: (route, manifest).
AckDeferral = Callable[[Route, Manifest], None]


class Receiver:
    """Message in, replies out; all state is in the :class:`EvidenceStore`.

    :meth:`handle` is called from one thread. Storing a complete segment (hash, fsyncs) can be handed to a
    second thread with :meth:`defer_completion`, which then calls :meth:`finish`, and acknowledging a stored
    one (catalog, receipt) to a third with :meth:`defer_acknowledgement`, which then calls
    :meth:`acknowledge` with a few at once; the few in-memory structures they share (offer cache, counters)
    are guarded by ``_lock``. Everything else is on disk, where the per-segment assembly lock keeps two
    finishers (threads or receivers) apart and a receipt, once stored, is never replaced.
    """

    def __init__(self, store: EvidenceStore, devices: Mapping[str, DevicePublicKey], receipt_key: ReceiptSigningKey,
                 receiver_id: str, *, max_segment_bytes: int, max_chunk_bytes: int,
                 clock: Callable[[], float] = time.time):
        self.store = store
        self.devices = dict(devices)
        self.receipt_key = receipt_key
        self.receiver_id = receiver_id
        self.max_segment_bytes = max_segment_bytes
        self.max_chunk_bytes = max_chunk_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._offers: collections.OrderedDict[str, tuple[Offer, Manifest]] = collections.OrderedDict()
        self._logged: dict[str, tuple[float, int, frozenset[str]]] = {}
        self._defer: Deferral | None = None
        self._defer_ack: AckDeferral | None = None
        self.counts: collections.Counter = collections.Counter()
        #: Devices seen since start, for the chain-gap report.
        self.seen: set[tuple[str, str]] = set()
        #: Monotonic time the last chunk was written (replaced whole by the handling thread, read by others).
        self.chunk_written_at = float("-inf")
        #: Called with the manifests of segments durably stored and not yet acknowledged, before their
        #: receipts are made (the evidence catalog records them here, a few in one transaction). A StoreError
        #: from it means "not acknowledged": the devices offer the segments again and this is called again,
        #: so it must be idempotent. If it has an ``open()``, the acknowledging thread calls that once when
        #: it starts, before the receiver takes messages (a database connection is per thread).
        self.on_stored: Callable[[list[Manifest]], None] | None = None

    def defer_completion(self, defer: Deferral | None) -> None:
        self._defer = defer

    def defer_acknowledgement(self, defer: AckDeferral | None) -> None:
        self._defer_ack = defer

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counts[key] += n

    def segment_arriving(self) -> bool:
        """Whether a segment's chunks are coming in right now (one was written within ``ARRIVING_S``)."""
        return time.monotonic() - self.chunk_written_at < ARRIVING_S

    def snapshot(self) -> collections.Counter:
        """A copy of the counters (they are updated by two threads)."""
        with self._lock:
            return collections.Counter(self.counts)

    def handle(self, topic: str, payload: bytes) -> list[Reply]:
        try:
            route = protocol.parse_topic(topic)
        except ProtocolError as exc:
            self._count("ignored")
            logger.warning("ignoring a message on %r: %s", topic[:120], exc)
            return []
        if route.direction != "up":
            return []
        return self._guarded(route, lambda: self._offer(route, payload) if route.kind == protocol.OFFER
                             else self._chunk(route, payload))

    def finish(self, route: Route, offer: Offer, manifest: Manifest, partial: Partial) -> list[Reply]:
        """Store a segment whose chunks are all present and return the receipt (or what to resend)."""
        return self._guarded(route, lambda: self._finish(route, offer, manifest, partial))

    def _guarded(self, route: Route, work) -> list[Reply]:
        """Turn every refusal into a logged, rate-limited ``rejected`` status for the sender."""
        try:
            return work()
        except _Rejection as rej:
            return [self._reject(route, rej.code, rej.reason, rej.stem)]
        except ProtocolError as exc:
            return [self._reject(route, exc.code, str(exc), exc.stem)]
        except ConflictError as exc:
            return [self._reject(route, "conflict", str(exc), exc.stem)]
        except StoreError as exc:
            logger.error("storage problem while handling %s from %s/%s: %s", route.kind, route.site, route.device, exc)
            return [self._reject(route, "storage_error", str(exc), None)]

    # -- offers ----------------------------------------------------------------------------------------
    def _offer(self, route: Route, payload: bytes) -> list[Reply]:
        offer = Offer.decode(payload)
        self._count("offers")
        manifest = self._check_offer(route, offer)
        self.seen.add((route.site, route.device))
        partial = self.store.partial(route.site, route.device, offer.stem, offer.chunk_size)
        stored = self.store.lookup(manifest)
        if stored is None:
            recorded = partial.read_offer()
            if recorded is None:
                partial.write_offer(offer)
                # Another receiver of the group may have stored the segment and removed its chunks since
                # the lookup: then this new folder would collect the device's chunks for nothing.
                stored = self.store.lookup(manifest)
            elif recorded != offer:
                raise _Rejection("conflict", f"{offer.stem} is being received with another manifest or size "
                                 "(a forked chain or a reused sequence number)", offer.stem)
        if stored is not None:
            self._discard(partial)
            return self._receipt_for_stored(route, stored)
        self._remember(partial, offer, manifest)
        have = set(partial.parts())
        if len(have) >= offer.chunks:
            return self._complete(route, offer, manifest, partial)
        return [self._status(route, offer, have)]

    def _check_offer(self, route: Route, offer: Offer) -> Manifest:
        stem = offer.stem
        if offer.size > self.max_segment_bytes:
            raise _Rejection("oversize", f"segment of {offer.size} bytes exceeds this receiver's limit of "
                             f"{self.max_segment_bytes}", stem)
        if offer.chunk_size > self.max_chunk_bytes:
            raise _Rejection("oversize", f"chunk size {offer.chunk_size} exceeds this receiver's limit of "
                             f"{self.max_chunk_bytes}", stem)
        try:
            manifest = Manifest.parse(offer.manifest)
        except ManifestError as exc:
            raise _Rejection("bad_manifest", str(exc), stem) from None
        key = self.devices.get(manifest.signing_key_id)
        if key is None:
            raise _Rejection("unknown_device", f"device {manifest.device_id} signs with key {manifest.signing_key_id}, "
                             "which is not enrolled here", stem)
        try:
            verify_manifest(offer.manifest, key)
        except SignatureError as exc:
            raise _Rejection("bad_signature", str(exc), stem) from None
        except ManifestError as exc:
            raise _Rejection("bad_manifest", str(exc), stem) from None
        claims = {"site": (route.site, manifest.site), "device": (route.device, manifest.device_id),
                  "stem": (offer.stem, manifest.stem), "seq": (offer.seq, manifest.seq),
                  "size": (offer.size, manifest.ciphertext_bytes), "sha256": (offer.sha256, manifest.ciphertext_sha256)}
        wrong = [k for k, (a, b) in claims.items() if a != b]
        if wrong:
            raise _Rejection("mismatch", f"topic/offer and signed manifest disagree on {', '.join(wrong)}", stem)
        return manifest

    def _remember(self, partial: Partial, offer: Offer, manifest: Manifest) -> None:
        key = str(partial.directory)
        with self._lock:
            self._offers[key] = (offer, manifest)
            self._offers.move_to_end(key)
            while len(self._offers) > _OFFER_CACHE:
                self._offers.popitem(last=False)

    def _forget(self, partial: Partial) -> None:
        with self._lock:
            self._offers.pop(str(partial.directory), None)

    def _discard(self, partial: Partial) -> None:
        """Remove chunks of a segment that is stored (left by a race or a receiver that died before cleaning up)."""
        partial.remove()
        self._forget(partial)

    def _recorded(self, partial: Partial) -> tuple[Offer, Manifest] | None:
        """The offer recorded for a partial (maybe by another receiver of the group), checked once."""
        with self._lock:
            found = self._offers.get(str(partial.directory))
        if found is not None:
            return found
        offer = partial.read_offer()
        if offer is None:
            return None
        manifest = Manifest.parse(offer.manifest)  # verified when it was recorded; parse for the fields
        self._remember(partial, offer, manifest)
        return offer, manifest

    # -- chunks ----------------------------------------------------------------------------------------
    def _chunk(self, route: Route, payload: bytes) -> list[Reply]:
        header, data = protocol.decode_chunk(payload, self.max_chunk_bytes, verify=False)
        stem = header.stem
        self._count("chunks")
        if not stem.startswith(route.device + "-"):
            raise _Rejection("mismatch", f"chunk for {stem} arrived on device {route.device}'s topic", stem)
        partial = self.store.partial(route.site, route.device, stem, header.chunk_size)
        recorded = self._recorded(partial)
        if recorded is None:
            return self._orphan_chunk(route, header)
        offer, manifest = recorded
        if header.segment_sha256 != offer.sha256 or header.chunks != offer.chunks:
            raise _Rejection("mismatch", f"chunk {header.index} of {stem} belongs to another version of the segment",
                             stem)
        expected = min(offer.chunk_size, offer.size - header.index * offer.chunk_size)
        if header.length != expected:
            raise _Rejection("malformed", f"chunk {header.index} of {stem} has {header.length} bytes, expected "
                             f"{expected}", stem)
        parts = partial.parts()
        if header.index in parts:
            self._count("duplicate_chunks")
            self._count("duplicate_bytes", header.length)
            return []
        try:
            partial.put(header.index, header.offset, header.sha256, data)
        except PartialGoneError:
            self._forget(partial)
            return self._orphan_chunk(route, header)
        self._count("chunk_bytes", header.length)
        self.chunk_written_at = time.monotonic()
        # Counted after writing our own marker: when receivers of a group write the last chunks at the
        # same moment, each listing before its write misses the others', and none would assemble.
        if len(partial.parts()) >= offer.chunks:
            return self._complete(route, offer, manifest, partial)
        return []

    def _orphan_chunk(self, route: Route, header) -> list[Reply]:
        """A chunk without a partial segment: a late duplicate of a stored one, or the offer was lost."""
        if self.store.read_receipt(route.site, route.device, header.stem) is not None:
            self._count("duplicate_chunks")
            self._count("duplicate_bytes", header.length)
            return []
        raise _Rejection("no_offer", f"chunk {header.index} of {header.stem} without a recorded offer; offer again",
                         header.stem)

    # -- completion ------------------------------------------------------------------------------------
    def _complete(self, route: Route, offer: Offer, manifest: Manifest, partial: Partial) -> list[Reply]:
        if self._defer is not None:
            self._defer(route, offer, manifest, partial)
            return []
        return self._finish(route, offer, manifest, partial)

    def _finish(self, route: Route, offer: Offer, manifest: Manifest, partial: Partial) -> list[Reply]:
        with partial.assembly_lock() as mine:
            if not mine:
                return []  # another receiver of the group (or thread) is storing it and will send the receipt
            stored = self.store.lookup(manifest)
            if stored is None:
                if not partial.exists:
                    return []  # stored and cleaned up by another receiver between our listing and the lock
                try:
                    done, missing = self.store.commit(manifest, partial)
                except StoreError as exc:
                    if not partial.exists:  # the assembled bytes did not match the manifest
                        raise _Rejection("hash_mismatch", str(exc), offer.stem) from None
                    raise
                if not done:
                    return [self._status(route, offer, set(range(offer.chunks)) - missing)]
        self._discard(partial)  # outside the lock: its file is in the partial's folder
        if stored is not None:  # stored by another receiver meanwhile: its receipt, and these chunks go
            return self._receipt_for_stored(route, stored)
        self._count("stored")
        self._count("stored_bytes", manifest.ciphertext_bytes)
        return self._acknowledge(route, manifest)

    def _receipt_for_stored(self, route: Route, stored) -> list[Reply]:
        if stored.receipt is None:  # stored, not yet acknowledged (queued, failed, or the receiver stopped)
            if not self.store.verify_stored(stored):
                raise StoreError(f"{stored.age_path} does not match its manifest; a human must look at it")
            return self._acknowledge(route, stored.manifest)
        self._count("receipts_resent")
        return [self._receipt_reply(route, stored.receipt)]

    # -- acknowledgement -------------------------------------------------------------------------------
    def _acknowledge(self, route: Route, manifest: Manifest) -> list[Reply]:
        if self._defer_ack is not None:
            self._defer_ack(route, manifest)
            return []
        return self.acknowledge([(route, manifest)])

    def acknowledge(self, batch: list[tuple[Route, Manifest]]) -> list[Reply]:
        """Catalog durably stored segments, then sign, store and return their receipts.

        The catalog records the batch in one transaction (what a segment costs there is mostly per
        transaction); when that fails, each segment is tried alone, so one bad segment withholds only its
        own receipt. Receipts are made in chain order, so a successor in the batch sees its predecessor's.
        """
        replies: list[Reply] = []
        waiting: list[tuple[Route, Manifest]] = []
        for route, manifest in batch:
            try:
                receipt = self.store.read_receipt(manifest.site, manifest.device_id, manifest.stem)
            except StoreError as exc:
                replies.append(self._reject(route, "storage_error", str(exc), manifest.stem))
                continue
            if receipt is None:
                waiting.append((route, manifest))
            else:  # acknowledged meanwhile (another receiver of the group, or an earlier request)
                self._count("receipts_resent")
                replies.append(self._receipt_reply(route, receipt))
        recorded, refused = self._record(waiting)
        replies += refused
        for route, manifest in sorted(recorded, key=lambda item: (item[1].site, item[1].device_id, item[1].seq)):
            replies += self._guarded(route, lambda: self._receipt(route, manifest))
        return replies

    def _record(self, batch: list[tuple[Route, Manifest]]) -> tuple[list[tuple[Route, Manifest]], list[Reply]]:
        """(the segments the catalog holds now, rejections for the others)."""
        if self.on_stored is None or not batch:
            return batch, []
        try:
            self.on_stored([manifest for _, manifest in batch])
            return batch, []
        except StoreError as exc:
            if len(batch) == 1:
                route, manifest = batch[0]
                logger.error("storage problem while acknowledging %s from %s/%s: %s", manifest.stem, route.site,
                             route.device, exc)
                return [], [self._reject(route, "storage_error", str(exc), manifest.stem)]
            logger.warning("catalog: recording %d segments together failed (%s); recording each alone", len(batch), exc)
        recorded, refused = [], []
        for item in batch:
            ok, rejected = self._record([item])
            recorded += ok
            refused += rejected
        return recorded, refused

    def _receipt(self, route: Route, manifest: Manifest) -> list[Reply]:
        chain = self.store.chain_position(manifest)
        receipt = sign_receipt(
            self.receipt_key, device_id=manifest.device_id, site=manifest.site, stem=manifest.stem,
            seq=manifest.seq, incident_id=manifest.incident_id, ciphertext_sha256=manifest.ciphertext_sha256,
            ciphertext_bytes=manifest.ciphertext_bytes, manifest_sha256=manifest.sha256,
            receiver_id=self.receiver_id, chain=chain, received_at=self._clock())
        kept = self.store.write_receipt(manifest, receipt)
        if kept != receipt:  # another receiver of the group signed it first: its receipt stands
            self._count("receipts_resent")
            return [self._receipt_reply(route, kept)]
        if chain == "broken":
            self._count("chain_broken")
        logger.info("stored %s (%d bytes, incident %s, chain %s)", manifest.stem, manifest.ciphertext_bytes,
                    manifest.incident_id, chain)
        return [self._receipt_reply(route, receipt)]

    def refused_reply(self, reason_code: int, reason: str) -> None:
        """The broker refused one of our replies (PUBACK >= 0x80; the ACL, most likely): counted and logged."""
        self._count("replies_refused")
        more = self._throttled(f"puback {reason_code}", self.receiver_id)
        if more is not None:
            logger.error("the broker refused a reply of receiver %s: reason 0x%02x (%s); check its ACL entry%s",
                         self.receiver_id, reason_code, reason, more)

    def _throttled(self, key: str, sender: str) -> str | None:
        """One log line per ``key`` and minute, whoever the sender: the text to append, or None to stay quiet."""
        now = time.monotonic()
        with self._lock:
            last, held, senders = self._logged.get(key, (-_LOG_EVERY_S, 0, frozenset()))
            if now - last < _LOG_EVERY_S:
                self._logged[key] = (last, held + 1, senders | {sender})
                return None
            self._logged[key] = (now, 0, frozenset())
        return f" (and {held} more from {len(senders)} sender(s) since the last report)" if held else ""

    # -- replies ---------------------------------------------------------------------------------------
    def _receipt_reply(self, route: Route, receipt: bytes) -> Reply:
        self._count("receipts_sent")
        return Reply(protocol.down_topic(route.site, route.device, protocol.RECEIPT), receipt)

    def _status(self, route: Route, offer: Offer, have: set[int]) -> Reply:
        status = Status(offer.stem, protocol.RECEIVING, self.receiver_id, protocol.to_ranges(have),
                        sha256=offer.sha256, chunk_size=offer.chunk_size)
        return Reply(protocol.down_topic(route.site, route.device, protocol.STATUS), status.encode())

    def _reject(self, route: Route, code: str, reason: str, stem: str | None) -> Reply:
        self._count("rejected")
        self._count(f"rejected_{code}")
        sender = f"{route.site}/{route.device}"
        more = self._throttled(code, sender)
        if more is not None:
            logger.warning("rejected %s from %s: %s: %s%s", stem or route.kind, sender, code, reason, more)
        status = Status(stem, protocol.REJECTED, self.receiver_id, code=code, reason=reason[:400])
        return Reply(protocol.down_topic(route.site, route.device, protocol.STATUS), status.encode())


def receiver_link(settings: MqttSettings, receiver_id: str, queue_messages: int = 64) -> MqttLink:
    """The MQTT link a receiver needs: at most ``queue_messages`` messages in flight to it.

    Each message is acknowledged only once the :class:`ReceiverThread` has handled it (its chunk is
    written), and the broker holds the rest: bounded memory without a paho callback ever waiting.
    """
    return MqttLink(settings, receiver_id, receive_maximum=queue_messages, ack_when_handled=True)


@dataclass(frozen=True, slots=True)
class _Stored:
    """A stage's replies (a status from the assembler, receipts from the acknowledger), published by the
    ReceiverThread."""

    replies: tuple[Reply, ...]


class _Stage(threading.Thread):
    """A worker behind the ReceiverThread: takes each job once while it is queued, does it, and hands the
    replies back through ``deliver``: one thread publishes, and so one thread sees every PUBACK.

    With ``batch`` > 1 it does up to that many at once: those waiting, and those that come within
    ``gather_s`` while ``more_coming(n)`` says more are on their way (``n``: how many it holds).
    """

    _STOP = object()

    #: How often a gathering stage asks whether more work is on its way.
    _POLL_S = 0.01

    def __init__(self, name: str, work: Callable[[list[tuple]], list[Reply]], deliver: Callable[[_Stored], None],
                 *, batch: int = 1, gather_s: float = 0.0, more_coming: Callable[[int], bool] = lambda n: False,
                 start_up: Callable[[], None] = lambda: None):
        super().__init__(name=name, daemon=True)
        self._start_up = start_up
        #: Set once ``start_up`` has run (or failed: then logged, and the work's own errors say the rest).
        self.ready = threading.Event()
        self._work = work
        self._deliver = deliver
        self._batch = batch
        self._gather_s = gather_s
        self._more_coming = more_coming
        self._jobs: queue.Queue = queue.Queue()
        self._queued: set[str] = set()
        self._lock = threading.Lock()
        self.fault: str | None = None
        #: Monotonic time the jobs in hand were taken up; None while idle or gathering (read by the watchdog).
        self.busy_since: float | None = None

    def submit(self, key: str, *job) -> None:
        """Queue a job once; a request while it is queued or being done is already covered."""
        with self._lock:
            if key in self._queued:
                return
            self._queued.add(key)
        self._jobs.put((key, job))

    def has_work(self) -> bool:
        """True while a job is queued or in hand (read from other threads)."""
        return self.busy_since is not None or not self._jobs.empty()

    def stop(self, timeout: float = 30.0) -> None:
        """Do what is queued, then end."""
        self._jobs.put(self._STOP)
        self.join(timeout)
        if self.is_alive():
            logger.error("%s did not finish within %.0f s", self.name, timeout)

    def run(self) -> None:
        try:
            try:
                self._start_up()
            except BodycamError as exc:
                logger.error("%s: %s", self.name, exc)
            finally:
                self.ready.set()
            stopping = False
            while not stopping and (first := self._jobs.get()) is not self._STOP:
                jobs = [first]
                deadline = time.monotonic() + self._gather_s
                while len(jobs) < self._batch:
                    try:
                        job = self._jobs.get_nowait()
                    except queue.Empty:
                        left = deadline - time.monotonic()
                        if left <= 0 or not self._more_coming(len(jobs)):
                            break
                        try:
                            job = self._jobs.get(timeout=min(left, self._POLL_S))
                        except queue.Empty:
                            continue
                    if job is self._STOP:
                        stopping = True
                        break
                    jobs.append(job)
                self.busy_since = time.monotonic()
                try:
                    replies = self._work([job for _, job in jobs])
                finally:
                    with self._lock:
                        self._queued.difference_update(key for key, _ in jobs)
                    self.busy_since = None
                if replies:
                    self._deliver(_Stored(tuple(replies)))
        except BaseException as exc:
            self.fault = f"{self.name} crashed: {type(exc).__name__}: {exc}"
            logger.exception("%s crashed", self.name)
            raise


class AssemblerThread(_Stage):
    """Stores complete segments (one hash pass, fsyncs) while the ReceiverThread takes more chunks.

    Without it the chunk intake stops for every segment's fsyncs (measured: about 40 ms per 12.5 MB
    segment on the development VM), and the broker holds the device's chunks meanwhile.
    """

    def __init__(self, receiver: Receiver, deliver: Callable[[_Stored], None]):
        super().__init__("ReceiverAssembler", lambda jobs: receiver.finish(*jobs[0]), deliver)

    def submit_segment(self, route: Route, offer: Offer, manifest: Manifest, partial: Partial) -> None:
        self.submit(str(partial.directory), route, offer, manifest, partial)


#: The most the acknowledger gathers stored segments before it records them (with a catalog), and how many
#: at most. The catalog's cost is mostly per transaction (docs/BENCHMARKS.md), but a receipt held back
#: too long stalls a device that already waits for four (comms.uplink.RECEIPTS_AWAITED). So it waits
#: while the assembler is storing another segment (which joins the batch a few tens of milliseconds
#: later), and, for a segment in hand alone, while another segment's chunks are arriving: at most one
#: segment's transfer more, so that two share a transaction, never a backlog.
ACK_GATHER_S = 0.25
ACK_BATCH = 8
#: Waiting for a segment still arriving only while the batch holds fewer than this.
ACK_AWAIT_ARRIVING = 2


class AcknowledgerThread(_Stage):
    """Records stored segments in the catalog, a few per transaction, and signs their receipts.

    ``storing``: whether another segment is about to be stored (the assembler is at work); ``arriving``:
    whether another segment's chunks are coming in (:meth:`Receiver.segment_arriving`). Without a catalog
    it gathers nothing: a receipt alone costs the same in a batch.
    """

    def __init__(self, receiver: Receiver, deliver: Callable[[_Stored], None], storing: Callable[[], bool], *,
                 arriving: Callable[[], bool] = lambda: False, gather_s: float = ACK_GATHER_S,
                 batch: int = ACK_BATCH):
        def more_coming(held: int) -> bool:
            return receiver.on_stored is not None and (storing() or (held < ACK_AWAIT_ARRIVING and arriving()))

        super().__init__("ReceiverAcknowledger", receiver.acknowledge, deliver, batch=batch, gather_s=gather_s,
                         more_coming=more_coming,
                         start_up=lambda: getattr(receiver.on_stored, "open", lambda: None)())

    def submit_segment(self, route: Route, manifest: Manifest) -> None:
        self.submit(f"{manifest.site}/{manifest.device_id}/{manifest.stem}", route, manifest)


class ReceiverThread(threading.Thread):
    """Feeds the :class:`Receiver` from the MQTT link and publishes its replies; also tidies up periodically.

    Complete segments are stored by its :class:`AssemblerThread` and acknowledged by its
    :class:`AcknowledgerThread`; :meth:`start` and :meth:`stop` run all three.
    Each message is acknowledged to the link once handled (see :func:`receiver_link`). It logs every
    change of the connection and, every ``summary_s``, what it did meanwhile; :meth:`health` says
    whether its work moves (for the systemd watchdog).
    """

    def __init__(self, link: MqttLink, receiver: Receiver, *, share_group: str = "",
                 partial_max_age_s: float = 72 * 3600, gap_report_s: float = 300.0, summary_s: float = 300.0,
                 stall_s: float = STALL_S):
        super().__init__(name="ReceiverThread", daemon=True)
        self.link = link
        self.receiver = receiver
        self.filter = protocol.receiver_filter(share_group)
        self._events: queue.Queue = queue.Queue()  # bounded by the link's receive maximum, not here
        link.add_listener(self._events, (self.filter,))
        self._partial_max_age_s = partial_max_age_s
        self._gap_report_s = gap_report_s
        self._summary_s = summary_s
        self.stall_s = stall_s
        self._stopping = threading.Event()
        self._open_gaps: dict[tuple[str, str], list[tuple[int, int]]] = {}
        self.fault: str | None = None
        self.connected = threading.Event()
        #: When the loop last turned, and since when the oldest reply waits for its PUBACK (watchdog).
        self._turned = time.monotonic()
        self._puback_waiting_since: float | None = None
        self._unacked: dict[int, float] = {}
        self._link_state = "starting"  # starting, up, down
        self._down_since = time.monotonic()
        #: When the last summary was logged, and the counters then.
        self._last_summary: tuple[float, collections.Counter] = (time.monotonic(), collections.Counter())
        self.assembler = AssemblerThread(receiver, self._events.put)
        self.acknowledger = AcknowledgerThread(receiver, self._events.put, self.assembler.has_work,
                                               arriving=receiver.segment_arriving)
        receiver.defer_completion(self.assembler.submit_segment)
        receiver.defer_acknowledgement(self.acknowledger.submit_segment)

    #: How long :meth:`start` waits for the acknowledger to open the catalog (a database slow to answer).
    OPEN_WAIT_S = 30.0

    def start(self) -> None:
        self.acknowledger.start()
        if not self.acknowledger.ready.wait(self.OPEN_WAIT_S):
            logger.warning("the catalog did not open within %.0f s; taking messages meanwhile", self.OPEN_WAIT_S)
        self.assembler.start()
        super().start()

    def begin_stop(self) -> None:
        """Finish the message in hand and take no more; call before stopping the link (its disconnect is no loss)."""
        self._stopping.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking messages, then let the assembler store and the acknowledger record what is queued.

        Receipts for segments stored during the stop are not sent; the device's next offer gets them.
        """
        self._stopping.set()
        if self.ident is not None:
            self.join(timeout)
            if self.is_alive():
                logger.error("receiver thread did not stop within %.0f s", timeout)
        for stage in (self.assembler, self.acknowledger):  # in this order: the assembler feeds the acknowledger
            if stage.ident is not None:
                stage.stop(timeout)
        self.link.remove_listener(self._events)

    def health(self) -> tuple[bool, str]:
        """(True, what it does) while its work moves; (False, why) when a thread died or is stuck.

        Called from another thread (the service's main loop); it only reads values this thread and its
        stages replace whole. Waiting for a broker that is down is not a stall: paho reconnects.
        """
        now = time.monotonic()
        if not self.is_alive():
            return False, self.fault or "the receiver thread ended"
        if now - self._turned > self.stall_s:
            return False, f"the receiver thread has been stuck for {now - self._turned:.0f} s"
        for stage, doing in ((self.assembler, "storing one segment"), (self.acknowledger, "acknowledging segments")):
            busy = stage.busy_since
            if not stage.is_alive():
                return False, stage.fault or f"the {stage.name} thread ended"
            if busy is not None and now - busy > self.stall_s:
                return False, f"{doing} has been stuck for {now - busy:.0f} s"
        waiting = self._puback_waiting_since
        if waiting is not None and now - waiting > self.stall_s:
            return False, f"a reply has been stuck without the broker's PUBACK for {now - waiting:.0f} s"
        return True, "receiving" if self._link_state == "up" else "waiting for the broker"

    def run(self) -> None:
        next_housekeeping = time.monotonic() + self._gap_report_s
        next_summary = time.monotonic() + self._summary_s
        self._last_summary = (time.monotonic(), self.receiver.snapshot())
        self._expire()
        try:
            while not self._stopping.is_set():
                self._turned = time.monotonic()
                try:
                    event = self._events.get(timeout=0.25)
                except queue.Empty:
                    event = None
                if isinstance(event, Message):
                    self._publish(self.receiver.handle(event.topic, event.payload))
                    self.link.ack(event)
                elif isinstance(event, _Stored):
                    self._publish(event.replies)
                elif isinstance(event, Published):
                    self._on_published(event)
                elif isinstance(event, Connected):
                    self._on_connected(event)
                elif isinstance(event, (Disconnected, ConnectFailed)):
                    self._on_link_lost(event)
                elif isinstance(event, Subscribed) and any(rc >= 0x80 for rc in event.reason_codes):
                    self.fault = f"the broker refused the subscription {self.filter}: {event.reason_codes}"
                    logger.error("%s", self.fault)
                for stage in (self.assembler, self.acknowledger):
                    if not stage.is_alive():
                        raise RuntimeError(stage.fault or f"the receiver's {stage.name} thread ended unexpectedly")
                now = time.monotonic()
                oldest = min(self._unacked.values(), default=None)
                self._puback_waiting_since = oldest if self._link_state == "up" else None
                if now >= next_summary:
                    next_summary = now + self._summary_s
                    self._summarise()
                if now >= next_housekeeping:
                    next_housekeeping = now + self._gap_report_s
                    self._expire()
                    self._report_gaps()
            self._summarise()
        except BaseException as exc:
            self.fault = f"receiver crashed: {type(exc).__name__}: {exc}"
            logger.exception("receiver thread crashed")
            raise

    def _summarise(self) -> None:
        since, before = self._last_summary
        self._last_summary = (time.monotonic(), self.receiver.snapshot())
        logger.info("%s", summary_line(self.receiver.receiver_id, self._last_summary[1] - before,
                                       self._last_summary[0] - since, self._link_state == "up",
                                       self._events.qsize()))

    def _publish(self, replies) -> None:
        for reply in replies:
            mid = self.link.publish(reply.topic, reply.payload, qos=1)
            if mid is not None:
                self._unacked[mid] = time.monotonic()

    def _on_published(self, event: Published) -> None:
        if self._unacked.pop(event.mid, None) is not None and event.failed:
            self.receiver.refused_reply(event.reason_code, event.reason)

    # -- the connection, in the log --------------------------------------------------------------------
    def _on_connected(self, event: Connected) -> None:
        self.link.subscribe([(self.filter, 1)])
        self.connected.set()
        now = time.monotonic()
        for mid in self._unacked:  # paho sends them again on this connection
            self._unacked[mid] = now
        after = f" after {now - self._down_since:.0f} s without it" if self._link_state == "down" else ""
        logger.info("receiver %s connected to the broker %s:%d%s (session %s); subscribing to %s",
                    self.receiver.receiver_id, self.link.settings.host, self.link.settings.port, after,
                    "resumed" if event.session_present else "new", self.filter)
        self._link_state = "up"

    def _on_link_lost(self, event) -> None:
        self.connected.clear()
        if self._stopping.is_set():
            return  # our own disconnect
        if self._link_state == "up":
            logger.warning("receiver %s lost the broker: %s; reconnecting", self.receiver.receiver_id, event.reason)
        elif self._link_state == "starting":
            logger.warning("receiver %s cannot connect to the broker %s:%d: %s; retrying",
                           self.receiver.receiver_id, self.link.settings.host, self.link.settings.port, event.reason)
        else:
            return  # one line per outage; paho retries every reconnect_max_s
        self._link_state, self._down_since = "down", time.monotonic()

    def _expire(self) -> None:
        try:
            self.receiver.store.expire_partials(self._partial_max_age_s)
        except BodycamError as exc:
            logger.error("cannot clean up the temporary area: %s", exc)

    def _report_gaps(self) -> None:
        """Log gaps that were already open at the previous report: out-of-order arrival fills the rest."""
        for site, device in sorted(self.receiver.seen):
            try:
                gaps = self.receiver.store.gaps(site, device)
            except BodycamError as exc:
                logger.error("cannot check the chain of %s/%s: %s", site, device, exc)
                continue
            before = set(self._open_gaps.get((site, device), []))
            for a, b in gaps:
                if (a, b) in before:
                    missing = f"seq {a}" if a == b else f"seq {a}..{b}"
                    logger.warning("chain gap: device %s/%s: %s still missing (later segments are stored)",
                                   site, device, missing)
            self._open_gaps[(site, device)] = gaps


def summary_line(receiver_id: str, counts: collections.Counter, seconds: float, link_up: bool, waiting: int) -> str:
    """The periodic INFO line: what the receiver did in the last ``seconds`` (``counts`` is the difference)."""
    c = counts
    rejected = ", ".join(f"{key[len('rejected_'):]} {n}" for key, n in sorted(c.items())
                         if key.startswith("rejected_") and n)
    parts = [f"{c['stored']} segments stored ({c['stored_bytes'] / 1e6:.1f} MB)",
             f"{c['chunks']} chunks ({c['duplicate_chunks']} duplicate)", f"{c['offers']} offers",
             f"{c['receipts_resent']} receipts resent", f"{c['rejected']} rejected" + (f" ({rejected})" if rejected else "")]
    if c["chain_broken"]:
        parts.append(f"{c['chain_broken']} chain breaks")
    if c["replies_refused"]:
        parts.append(f"{c['replies_refused']} replies refused by the broker")
    state = "broker connected" if link_up else "broker NOT connected"
    return f"receiver {receiver_id}, last {seconds:.0f} s: {', '.join(parts)}; {state}, {waiting} messages waiting"
