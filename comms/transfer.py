"""The device's bookkeeping for one segment on its way to the back office. Pure state, no I/O.

A :class:`SegmentTransfer` knows the segment's identity and hashes, which chunks still have to go,
which are in flight (published, no PUBACK yet), and when to ask the receiver again. The uplink thread
owns it and feeds it the events; the rules here are what makes the transfer resumable and cheap to
repeat:

* Chunks are sent only after the receiver's status for *this* offer said what it already holds, so
  after any disconnect or restart only the missing chunks travel again.
* A chunk in flight is never queued a second time: paho resends it itself after a reconnect (the
  MQTT session rule), and its PUBACK still arrives.
* A failed PUBACK (reason code >= 0x80) puts the chunk back at the front of the queue.
* "All chunks PUBACKed" is not "delivered": the transfer then waits for the receipt, and offers again
  if none comes, which returns the receiver's view and the chunks it lacks.
* The segment is open for reading only while it may be sent (LOADING..SENDING): a
  :class:`ChunkSource` (on the device the spool's ``SegmentReader``) from which each chunk is read when
  it is published, so RAM holds the chunks in the MQTT window, never whole segments. Once every chunk
  is PUBACKed the source is closed, and opened again only if the receiver turns out to lack some.
"""

from __future__ import annotations

import enum
import hashlib
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from .protocol import Offer, chunk_count, encode_chunk


class Phase(enum.Enum):
    LOADING = "loading"      # the bytes are being read from the spool
    OFFER = "offer"          # an offer has to be (re)sent
    OFFERED = "offered"      # waiting for the receiver's status
    SENDING = "sending"      # chunks to send or in flight
    SENT = "sent"            # every chunk PUBACKed, bytes released; waiting for the receipt


#: Phases in which the transfer holds (or is about to hold) the segment open.
HOLDING = frozenset({Phase.LOADING, Phase.OFFER, Phase.OFFERED, Phase.SENDING})


class ChunkSource(Protocol):
    """Where a transfer reads its chunks from; ``read`` may raise a ``BodycamError`` (card failing)."""

    def read(self, offset: int, length: int) -> bytes: ...

    def close(self) -> None: ...


class BytesSource:
    """A ciphertext already in memory as a :class:`ChunkSource` (tools and tests)."""

    def __init__(self, data: bytes):
        self._data = data

    def read(self, offset: int, length: int) -> bytes:
        return self._data[offset:offset + length]

    def close(self) -> None:
        pass


@dataclass
class SegmentTransfer:
    stem: str
    seq: int
    sha256: str
    size: int
    chunk_size: int
    source: ChunkSource | None = field(default=None, repr=False)
    manifest: bytes | None = field(default=None, repr=False)
    manifest_sha256: str | None = None
    phase: Phase = Phase.LOADING
    #: Monotonic time at which to offer again if nothing was heard (set by the uplink).
    deadline: float = 0.0
    backoff: float = 0.0
    offers: int = 0
    to_send: deque[int] = field(default_factory=deque)
    inflight: set[int] = field(default_factory=set)
    ever_sent: set[int] = field(default_factory=set)
    #: The receiver's latest view, kept while the bytes are loaded again.
    have: set[int] | None = None
    chunks_sent: int = 0
    chunks_resent: int = 0
    bytes_sent: int = 0
    bytes_resent: int = 0
    uploaded_logged: bool = False
    last_code: str | None = None

    @property
    def chunks(self) -> int:
        return chunk_count(self.size, self.chunk_size)

    @property
    def holding(self) -> bool:
        return self.phase in HOLDING

    def loaded(self, source: ChunkSource, manifest: bytes) -> None:
        """The segment is open: offer, or (when the receiver's view is known) send what it lacks."""
        self.release()
        self.source, self.manifest = source, manifest
        self.manifest_sha256 = hashlib.sha256(manifest).hexdigest()
        if self.have is not None:
            self.receiver_has(self.have)
        elif self.phase is Phase.LOADING:
            self.phase = Phase.OFFER

    def offer(self) -> Offer:
        return Offer(self.stem, self.seq, self.size, self.sha256, self.chunk_size, self.manifest)

    def offered(self, deadline: float) -> None:
        self.offers += 1
        self.phase = Phase.OFFERED
        self.deadline = deadline

    def receiver_has(self, have: set[int]) -> bool:
        """The receiver's status. Returns True when the bytes must be loaded again to send what it lacks."""
        lacking = [i for i in range(self.chunks) if i not in have and i not in self.inflight]
        if lacking and self.source is None:
            self.have, self.phase = set(have), Phase.LOADING
            return True
        self.have = None
        self.to_send = deque(lacking)
        self.phase = Phase.SENDING
        self._maybe_sent()
        return False

    def next_chunk(self) -> tuple[int, bytes] | None:
        """The next chunk message to publish, or None when none is queued.

        Reads the chunk from the source; if that raises, nothing changed and the chunk is still queued.
        """
        if self.phase is not Phase.SENDING or not self.to_send or self.source is None:
            return None
        index = self.to_send[0]
        offset = index * self.chunk_size
        length = min(self.chunk_size, self.size - offset)
        data = self.source.read(offset, length)
        payload = encode_chunk(self.stem, index, self.chunks, offset, data, self.sha256, self.chunk_size)
        self.to_send.popleft()
        self.inflight.add(index)
        self.chunks_sent += 1
        self.bytes_sent += length
        if index in self.ever_sent:
            self.chunks_resent += 1
            self.bytes_resent += length
        self.ever_sent.add(index)
        return index, payload

    def unqueued(self, index: int) -> None:
        """paho refused the chunk outright: it was never in flight."""
        self.inflight.discard(index)
        self.to_send.appendleft(index)

    def acked(self, index: int, ok: bool) -> bool:
        """A chunk's PUBACK; returns True when this made every chunk acknowledged (phase SENT)."""
        self.inflight.discard(index)
        if not ok:
            if index not in self.to_send:
                self.to_send.appendleft(index)
            if self.phase is Phase.SENT:
                self.phase = Phase.LOADING if self.source is None else Phase.SENDING
            return False
        return self._maybe_sent()

    def _maybe_sent(self) -> bool:
        if self.phase is Phase.SENDING and not self.to_send and not self.inflight:
            self.phase = Phase.SENT
            self.release()  # the hashes stay for the receipt check
            return True
        return False

    def release(self) -> None:
        """Close the source (idempotent); chunks the receiver may still lack mean opening it again."""
        if self.source is not None:
            source, self.source = self.source, None
            source.close()

    def link_lost(self) -> None:
        """After a reconnect the receiver's view must be asked again; in-flight chunks stay with paho."""
        self.to_send.clear()
        self.have = None
        if self.phase is not Phase.LOADING:
            self.phase = Phase.OFFER

    @property
    def waiting_for_receiver(self) -> bool:
        return self.phase in (Phase.OFFERED, Phase.SENT)
