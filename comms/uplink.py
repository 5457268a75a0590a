"""The device's uplink: walks the spool oldest-first and moves each sealed segment to the back office.

:class:`UplinkThread` owns the conversation with the receiver; paho's network thread only feeds it
events (comms.mqtt) and its :class:`~comms.spoolworker.SpoolWorker` does the card I/O (reading
segments, recording receipts, deleting, audit lines), so neither the network side nor the capture
path ever waits for the other. The uplink never writes into the spool except through
``Spool.acknowledge`` and ``Spool.purge``.

Per segment (see comms.transfer and docs/PROTOCOL.md): offer -> the receiver's status -> the missing
chunks, at QoS 1 within the MQTT window -> the signed receipt. Up to ``segments_ahead`` segments are
open at once (so the next offer's round trip overlaps the current chunks), and up to
:data:`RECEIPTS_AWAITED` more wait for their receipts, closed. Chunks are read from the spool file as
they are published, so RAM holds the MQTT window, not whole segments. Only a receipt that
verifies with the configured receipt key *and* names this device, the stem, seq, size and the
ciphertext's and manifest's SHA-256 leads to ``Spool.acknowledge``; then ``storage.purge_policy``
decides whether the segment is deleted at once (``on_ack``) or when space is needed (``when_needed``,
done by the writer side). A PUBACK only moves the window: mosquitto may lose what it acknowledged.

PUBACK reason codes >= 0x80 are failures: 0x87 (not authorized) and 0x90 (topic name invalid) mean
the broker's ACL or our identity is wrong, which retrying cannot fix: the uplink raises a fault and
stops sending until restarted. Anything else (quota exceeded, packet too large, server busy,
unspecified) backs off exponentially and resends.

Status for telemetry and the display: :attr:`UplinkThread.status`, an immutable
:class:`UplinkStatus` replaced as a whole (reading it needs no lock).
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from dataclasses import asdict, dataclass
from typing import Callable

from evidence import audit
from base.errors import BodycamError
from evidence.keys import ReceiptPublicKey
from evidence.spool import Spool

from . import protocol
from .mqtt import ConnectFailed, Connected, Disconnected, Message, MqttLink, Published, Subscribed
from .protocol import ProtocolError, Status
from evidence.receipts import Receipt, ReceiptError, verify_receipt
from .settings import UplinkSettings
from .spoolworker import AuditSink, Loaded, Settled, SpoolWorker, WorkerFault
from .transfer import Phase, SegmentTransfer

logger = logging.getLogger(__name__)

#: PUBACK reason codes that retrying cannot fix.
FATAL_PUBACK = {0x87: "not authorized", 0x90: "topic name invalid"}
#: Segments whose chunks are all PUBACKed and whose receipt is awaited (their bytes are not held).
RECEIPTS_AWAITED = 4
_RESCAN_S = 1.0
_STATUS_EVERY_S = 0.25
_MAX_FAULTS = 10
_RETRY_MAX_S = 60.0
_WAKE = object()


@dataclass(frozen=True)
class UplinkStatus:
    """What the uplink is doing, for telemetry, the display and ``bodycam status``."""

    #: disabled, connecting, idle, offering, sending, waiting_receipt, receiver_silent, backoff, paused,
    #: refused, stopped
    state: str = "connecting"
    link_up: bool = False
    connects: int = 0
    disconnects: int = 0
    window: int = 0
    backlog_segments: int = 0
    backlog_bytes: int = 0
    backlog_oldest_age_s: float | None = None
    active: tuple[str, ...] = ()
    chunks_sent: int = 0
    chunks_resent: int = 0
    bytes_sent: int = 0
    bytes_resent: int = 0
    offers_sent: int = 0
    puback_errors: int = 0
    segments_uploaded: int = 0
    segments_acknowledged: int = 0
    segments_purged: int = 0
    receipts_rejected: int = 0
    last_receipt_stem: str | None = None
    last_receipt_time: float | None = None
    last_receipt_chain: str | None = None
    #: The current fault (None when healthy) and the most recent ones, newest last.
    fault: str | None = None
    recent_faults: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return asdict(self)


class UplinkThread(threading.Thread):
    """Uploads the spool; one per device. Build after the spool is recovered; the link may already run
    (a replacement for a crashed uplink picks up where the receiver is, like after a restart)."""

    def __init__(self, link: MqttLink, spool: Spool, *, site: str, device_id: str, settings: UplinkSettings,
                 receipt_key: ReceiptPublicKey, purge_policy: str = "on_ack", audit_log: AuditSink | None = None,
                 clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time):
        super().__init__(name="UplinkThread", daemon=True)
        if purge_policy not in ("on_ack", "when_needed"):
            raise ValueError(f"purge policy {purge_policy!r} is not on_ack or when_needed")
        self.link = link
        self.spool = spool
        self.site = site
        self.device_id = device_id
        self.settings = settings
        self.receipt_key = receipt_key
        self._clock = clock
        self._wall = wall_clock
        self._chunk_size = settings.chunk_kib * 1024
        self._events: queue.Queue = queue.Queue()
        self._worker = SpoolWorker(spool, self._events, purge_policy=purge_policy, audit_log=audit_log)
        self._filter = protocol.device_filter(site, device_id)
        link.add_listener(self._events, (self._filter,))
        self._stopping = threading.Event()

        self._link_up = False
        self._window = link.window
        self._active: dict[str, SegmentTransfer] = {}
        self._inflight: dict[int, tuple[str, int | None]] = {}
        self._loading: set[str] = set()
        self._settling: set[str] = set()
        self._parked: dict[str, float] = {}
        #: Segments the card returns damaged: their fault stays until the card reads them right again.
        self._unreadable: dict[str, str] = {}
        self._paused_until = 0.0
        self._backoff_until = 0.0
        self._retry = settings.retry_min_s
        self._refused: str | None = None
        self._last_rescan = -_RESCAN_S
        self._last_heard = clock()
        self._last_status = -_STATUS_EVERY_S
        self._changed = False
        self._faults: collections.deque[str] = collections.deque(maxlen=_MAX_FAULTS)
        #: The latest problem; cleared when a segment is acknowledged again (unless one stays unreadable).
        self.fault: str | None = None
        self._counts: collections.Counter = collections.Counter()
        #: Chunk and byte counters of transfers no longer in play.
        self._totals: collections.Counter = collections.Counter()
        self._last_receipt: Receipt | None = None
        self._last_receipt_time: float | None = None
        self._status = UplinkStatus(window=self._window)

    # -- public ----------------------------------------------------------------------------------------
    @property
    def status(self) -> UplinkStatus:
        return self._status

    def notify_new_segment(self) -> None:
        """Optional hint from the sealer that a segment was stored (otherwise the spool is polled each second)."""
        self._events.put(_WAKE)

    def start(self) -> None:
        self._worker.start()
        super().start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop sending, then let the spool worker finish recording the receipts already verified."""
        self._stopping.set()
        self._events.put(_WAKE)
        if self.ident is not None:
            self.join(timeout)
            if self.is_alive():
                logger.error("uplink thread did not stop within %.0f s", timeout)
        if self._worker.ident is not None:
            self._worker.stop(timeout)
        self.link.remove_listener(self._events)
        while True:  # segments the worker opened that nobody took any more
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                break
            if isinstance(event, Loaded) and event.segment is not None:
                event.segment.close()

    # -- the loop --------------------------------------------------------------------------------------
    def run(self) -> None:
        try:
            if self.settings.enabled:
                self._worker.purge_acknowledged()
            while not self._stopping.is_set():
                try:
                    event = self._events.get(timeout=self._sleep_time())
                except queue.Empty:
                    event = None
                while event is not None and not self._stopping.is_set():
                    self._handle(event)
                    try:
                        event = self._events.get_nowait()
                    except queue.Empty:
                        event = None
                if not self._worker.is_alive():
                    raise RuntimeError("the uplink's spool worker ended unexpectedly")
                if self.settings.enabled:
                    self._tick()
                self._update_status(force=self._changed)
        except BaseException as exc:
            self.fault = f"uplink crashed: {type(exc).__name__}: {exc}"
            logger.exception("uplink thread crashed")
            raise
        finally:
            for t in self._active.values():
                t.release()
            self._update_status(force=True, state="stopped")

    def _sleep_time(self) -> float:
        now = self._clock()
        wake = now + _RESCAN_S
        for t in self._active.values():
            if t.waiting_for_receiver:
                wake = min(wake, t.deadline)
        if self._backoff_until > now:
            wake = min(wake, self._backoff_until)
        return max(0.01, min(_RESCAN_S, wake - now))

    def _handle(self, event) -> None:
        if event is _WAKE:
            self._last_rescan = -_RESCAN_S
        elif isinstance(event, Published):
            self._on_published(event)
        elif isinstance(event, Message):
            self._on_message(event)
        elif isinstance(event, Loaded):
            self._on_loaded(event)
        elif isinstance(event, Settled):
            self._on_settled(event)
        elif isinstance(event, WorkerFault):
            self._set_fault(event.message)
        elif isinstance(event, Connected):
            self._on_connected(event)
        elif isinstance(event, (Disconnected, ConnectFailed)):
            self._on_link_lost(event.reason)
        elif isinstance(event, Subscribed):
            if any(rc >= 0x80 for rc in event.reason_codes):
                self._set_fault(f"the broker refused the receipt subscription {self._filter} "
                                f"(reason {event.reason_codes}); check the ACL")

    def _tick(self) -> None:
        now = self._clock()
        self._expire_parked(now)
        if self._refused:
            return
        if now - self._last_rescan >= _RESCAN_S:
            self._last_rescan = now
            self._activate()
        for t in self._active.values():
            if t.phase is Phase.LOADING and t.stem not in self._loading:
                self._loading.add(t.stem)
                self._worker.load(t.stem)
        if not self._link_up or now < self._paused_until:
            return
        self._check_deadlines(now)
        if now >= self._backoff_until:
            self._pump(now)

    # -- link events -----------------------------------------------------------------------------------
    def _on_connected(self, ev: Connected) -> None:
        self._changed = True
        self._link_up = True
        self._window = ev.window
        self._counts["connects"] += 1
        logger.info("uplink connected (session %s, receive maximum %d, window %d)",
                    "resumed" if ev.session_present else "new", ev.receive_maximum, ev.window)
        if ev.maximum_packet_size is not None and ev.maximum_packet_size < self._chunk_size + 2048:
            self._refuse(f"the broker accepts packets of at most {ev.maximum_packet_size} bytes, less than one "
                         f"chunk of {self.settings.chunk_kib} KiB; lower uplink.chunk_kib")
            return
        self.link.subscribe([(self._filter, 1)])
        for t in self._active.values():
            t.link_lost()

    def _on_link_lost(self, reason: str) -> None:
        self._changed = True
        if self._link_up:
            self._counts["disconnects"] += 1
            logger.warning("uplink lost the broker: %s", reason)
        self._link_up = False
        for t in self._active.values():
            t.link_lost()

    def _refuse(self, reason: str) -> None:
        self._refused = reason
        self._set_fault(reason + "; uploads stopped until the agent is restarted")
        logger.critical("uplink stopped: %s", reason)

    # -- segments in play ------------------------------------------------------------------------------
    def _activate(self) -> None:
        """Bring the oldest pending segments into play (their bytes are read by the spool worker)."""
        holding = sum(t.holding for t in self._active.values())
        limit = self.settings.segments_ahead + RECEIPTS_AWAITED
        if holding >= self.settings.segments_ahead or len(self._active) >= limit:
            return
        for info in self.spool.pending():
            stem = info.stem
            if stem in self._active or stem in self._parked or stem in self._settling:
                continue
            self._active[stem] = SegmentTransfer(stem=stem, seq=info.seq, sha256=info.ciphertext_sha256,
                                                 size=info.ciphertext_bytes, chunk_size=self._chunk_size)
            self._loading.add(stem)
            self._worker.load(stem)
            holding += 1
            if holding >= self.settings.segments_ahead or len(self._active) >= limit:
                return

    def _on_loaded(self, ev: Loaded) -> None:
        self._loading.discard(ev.stem)
        t = self._active.get(ev.stem)
        if t is None:
            if ev.segment is not None:
                ev.segment.close()  # taken out of play while it was being opened
            return
        if ev.segment is None:
            self._retire(ev.stem)
            if ev.problem == "missing":
                self._unreadable.pop(ev.stem, None)
            elif ev.problem == "corrupt":
                self._unreadable[ev.stem] = ev.message
                self._set_fault(ev.message)
                self._parked[ev.stem] = self._clock() + self.settings.reject_retry_s
            elif ev.problem == "error":
                self._set_fault(ev.message)
                self._parked[ev.stem] = self._clock() + _RESCAN_S * 5
            return
        if self._unreadable.pop(ev.stem, None) is not None:
            logger.warning("uplink: %s reads correctly again", ev.stem)
        t.loaded(ev.segment, ev.segment.manifest)

    def _retire(self, stem: str) -> None:
        """Take a transfer out of play, keeping its counters (its in-flight chunks stay with paho)."""
        t = self._active.pop(stem, None)
        self._last_rescan = -_RESCAN_S  # a place is free: bring in the next segment at once
        if t is not None:
            t.release()
            for key in ("chunks_sent", "chunks_resent", "bytes_sent", "bytes_resent"):
                self._totals[key] += getattr(t, key)

    def _expire_parked(self, now: float) -> None:
        for stem in [s for s, until in self._parked.items() if until <= now]:
            del self._parked[stem]

    # -- sending ---------------------------------------------------------------------------------------
    def _pump(self, now: float) -> None:
        """Send due offers, then chunks of the oldest segment first, while the window has room."""
        for t in list(self._active.values()):
            if t.phase is Phase.OFFER and len(self._inflight) < self._window:
                self._send_offer(t, now)
        for t in self._active.values():
            while len(self._inflight) < self._window:
                try:
                    nxt = t.next_chunk()
                except BodycamError as exc:  # the card fails under the open segment
                    self._unreadable[t.stem] = f"cannot read {t.stem} from the spool: {exc}"
                    self._set_fault(self._unreadable[t.stem])
                    self._retire(t.stem)
                    self._parked[t.stem] = now + self.settings.reject_retry_s
                    return
                if nxt is None:
                    break
                index, payload = nxt
                mid = self.link.publish(protocol.up_topic(self.site, self.device_id, protocol.CHUNK), payload)
                if mid is None:
                    t.unqueued(index)
                    self._backoff(now, f"paho refused a chunk of {t.stem}")
                    return
                self._inflight[mid] = (t.stem, index)
            if len(self._inflight) >= self._window:
                return

    def _send_offer(self, t: SegmentTransfer, now: float) -> None:
        mid = self.link.publish(protocol.up_topic(self.site, self.device_id, protocol.OFFER), t.offer().encode())
        if mid is None:
            self._backoff(now, f"paho refused the offer of {t.stem}")
            return
        self._inflight[mid] = (t.stem, None)
        self._counts["offers"] += 1
        t.offered(now + max(t.backoff, self.settings.receipt_timeout_s))

    def _check_deadlines(self, now: float) -> None:
        """Nothing heard for a segment in time: offer it again (the answer says what is missing)."""
        for t in self._active.values():
            if t.waiting_for_receiver and now >= t.deadline:
                t.backoff = min(self.settings.offer_backoff_max_s,
                                max(self.settings.receipt_timeout_s, t.backoff * 2))
                logger.info("uplink: no answer for %s in time; offering again (next wait %.0f s)", t.stem, t.backoff)
                t.phase = Phase.OFFER

    def _backoff(self, now: float, reason: str) -> None:
        self._backoff_until = now + self._retry
        logger.warning("uplink backing off %.1f s: %s", self._retry, reason)
        self._retry = min(_RETRY_MAX_S, self._retry * 2)

    # -- PUBACKs ---------------------------------------------------------------------------------------
    def _on_published(self, ev: Published) -> None:
        entry = self._inflight.pop(ev.mid, None)
        if entry is None:
            return  # a message of another user of the link
        stem, index = entry
        t = self._active.get(stem)
        if ev.failed:
            self._counts["puback_errors"] += 1
            if ev.reason_code in FATAL_PUBACK:
                self._refuse(f"the broker refused our publish with reason 0x{ev.reason_code:02x} "
                             f"({FATAL_PUBACK[ev.reason_code]}): the broker's ACL or this device's certificate "
                             "does not match its topics")
            else:
                self._backoff(self._clock(), f"PUBACK reason 0x{ev.reason_code:02x} ({ev.reason}) for {stem}")
            if t is not None:
                if index is None:
                    t.phase = Phase.OFFER
                else:
                    t.acked(index, ok=False)
            return
        self._retry = self.settings.retry_min_s
        if t is None or index is None:
            return
        if t.acked(index, ok=True):
            self._all_sent(t)

    def _all_sent(self, t: SegmentTransfer) -> None:
        """Every chunk is with the broker (or already with the receiver): now the receipt is awaited."""
        t.deadline = self._clock() + self.settings.receipt_timeout_s
        self._last_rescan = -_RESCAN_S  # its bytes are released: bring in the next segment at once
        if not t.uploaded_logged:
            t.uploaded_logged = True
            self._counts["uploaded"] += 1
            self._worker.audit(audit.SEGMENT_UPLOADED, stem=t.stem, ciphertext_sha256=t.sha256, bytes=t.size,
                               chunks=t.chunks, chunks_resent=t.chunks_resent)

    # -- messages from the receiver --------------------------------------------------------------------
    def _on_message(self, ev: Message) -> None:
        try:
            route = protocol.parse_topic(ev.topic)
        except ProtocolError as exc:
            logger.warning("uplink: ignoring a message on %s: %s", ev.topic, exc)
            return
        if route.direction != "down" or (route.site, route.device) != (self.site, self.device_id):
            logger.warning("uplink: ignoring a message on %s (not this device's downlink)", ev.topic)
            return
        self._last_heard = self._clock()
        if route.kind == protocol.RECEIPT:
            self._on_receipt(ev.payload)
            return
        try:
            status = Status.decode(ev.payload)
        except ProtocolError as exc:
            self._set_fault(f"unreadable status from the receiver: {exc}")
            return
        self._on_status(status)

    def _on_status(self, st: Status) -> None:
        now = self._clock()
        t = self._active.get(st.stem) if st.stem else None
        if st.state == protocol.REJECTED:
            self._on_rejected(st, t, now)
            return
        if t is None or (t.phase is Phase.LOADING and t.have is None):
            return  # about a segment not in play (an older offer), or one being read
        if (st.sha256 and st.sha256 != t.sha256) or (st.chunk_size and st.chunk_size != t.chunk_size):
            return  # about another version of this segment's transfer
        t.backoff = 0.0
        t.receiver_has(st.indices())
        if t.phase is Phase.SENT:
            self._all_sent(t)
        else:
            t.deadline = now + self.settings.receipt_timeout_s

    def _on_rejected(self, st: Status, t: SegmentTransfer | None, now: float) -> None:
        code, reason = st.code or "?", st.reason or "no reason given"
        what = st.stem or "a message"
        if code in protocol.RETRYABLE_CODES:
            logger.warning("receiver %s asks to resend %s (%s: %s)", st.receiver, what, code, reason)
            if t is not None:
                t.last_code = code
                if code in ("busy", "storage_error"):
                    if t.phase is not Phase.LOADING:
                        t.to_send.clear()
                        t.phase = Phase.SENT if t.source is None else Phase.OFFERED
                    t.deadline = now + self.settings.receipt_timeout_s
                elif t.phase is not Phase.LOADING:
                    t.phase = Phase.OFFER
            return
        self._set_fault(f"receiver {st.receiver} rejected {what}: {code}: {reason}")
        if code in protocol.DEVICE_CODES:
            self._paused_until = now + self.settings.reject_retry_s
            for other in self._active.values():
                other.link_lost()
            return
        if t is not None:
            self._retire(t.stem)
            self._parked[t.stem] = now + self.settings.reject_retry_s

    def _on_receipt(self, data: bytes) -> None:
        try:
            receipt = verify_receipt(data, self.receipt_key)
            if (receipt.device_id, receipt.site) != (self.device_id, self.site):
                raise ReceiptError(f"receipt is for device {receipt.site}/{receipt.device_id}, not this one")
            t = self._active.get(receipt.stem)
            if t is None or t.manifest_sha256 is None:
                logger.debug("uplink: receipt for %s, which is not in play; an offer will bring it again",
                             receipt.stem)
                return
            if (receipt.seq, receipt.ciphertext_sha256, receipt.ciphertext_bytes, receipt.manifest_sha256) != \
                    (t.seq, t.sha256, t.size, t.manifest_sha256):
                raise ReceiptError(f"receipt for {receipt.stem} names other bytes than the spool holds "
                                   "(seq, size, ciphertext or manifest hash differ)")
        except ReceiptError as exc:
            self._counts["receipts_rejected"] += 1
            self._set_fault(f"receipt rejected, nothing deleted: {exc}")
            return
        self._retire(receipt.stem)
        self._settling.add(receipt.stem)
        self._worker.settle(receipt.stem, receipt.ciphertext_sha256, data,
                            dict(receipt_sha256=receipt.sha256, receiver=receipt.receiver_id, chain=receipt.chain))
        self._last_receipt, self._last_receipt_time = receipt, self._wall()
        if receipt.chain == "broken":
            logger.error("receiver %s reports the evidence chain broken at %s", receipt.receiver_id, receipt.stem)
        logger.info("uplink: %s received by %s (chain %s)", receipt.stem, receipt.receiver_id, receipt.chain)

    def _on_settled(self, ev: Settled) -> None:
        self._settling.discard(ev.stem)
        self._changed = True
        if ev.acknowledged:
            self._counts["acknowledged"] += 1
            self._unreadable.pop(ev.stem, None)
            self.fault = next(iter(self._unreadable.values()), None)
        if ev.purged:
            self._counts["purged"] += 1
        if ev.error:
            self._set_fault(ev.error)

    # -- faults and status -----------------------------------------------------------------------------
    def _set_fault(self, text: str) -> None:
        self._changed = True
        if text != self.fault:
            logger.error("uplink: %s", text)
        self.fault = text
        self._faults.append(text)

    def _state(self, now: float) -> str:
        if not self.settings.enabled:
            return "disabled"
        if self._refused:
            return "refused"
        if not self._link_up:
            return "connecting"
        if now < self._paused_until:
            return "paused"
        if now < self._backoff_until:
            return "backoff"
        if not self._active:
            return "idle"
        phases = {t.phase for t in self._active.values()}
        if Phase.SENDING in phases:
            return "sending"
        if any(t.offers > 1 for t in self._active.values()) and \
                now - self._last_heard > self.settings.receipt_timeout_s:
            return "receiver_silent"
        if phases & {Phase.LOADING, Phase.OFFER, Phase.OFFERED}:
            return "offering"
        return "waiting_receipt"

    def _update_status(self, force: bool = False, state: str | None = None) -> None:
        now = self._clock()
        if not force and now - self._last_status < _STATUS_EVERY_S:
            return
        self._last_status, self._changed = now, False
        backlog = self.spool.backlog()
        active = list(self._active.values())
        c, totals, receipt = self._counts, self._totals, self._last_receipt
        self._status = UplinkStatus(
            state=state or self._state(now), link_up=self._link_up, connects=c["connects"],
            disconnects=c["disconnects"], window=self._window, backlog_segments=backlog.count,
            backlog_bytes=backlog.bytes, backlog_oldest_age_s=backlog.oldest_age_s,
            active=tuple(t.stem for t in active),
            chunks_sent=totals["chunks_sent"] + sum(t.chunks_sent for t in active),
            chunks_resent=totals["chunks_resent"] + sum(t.chunks_resent for t in active),
            bytes_sent=totals["bytes_sent"] + sum(t.bytes_sent for t in active),
            bytes_resent=totals["bytes_resent"] + sum(t.bytes_resent for t in active),
            offers_sent=c["offers"], puback_errors=c["puback_errors"], segments_uploaded=c["uploaded"],
            segments_acknowledged=c["acknowledged"], segments_purged=c["purged"],
            receipts_rejected=c["receipts_rejected"],
            last_receipt_stem=receipt.stem if receipt else None, last_receipt_time=self._last_receipt_time,
            last_receipt_chain=receipt.chain if receipt else None,
            fault=self.fault, recent_faults=tuple(self._faults))
