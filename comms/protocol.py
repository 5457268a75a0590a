"""The evidence-transfer protocol on the wire: topics, message formats, version, limits. No I/O here.

Topics (``<site>`` and ``<device>`` are ids: 1-64 of ``a-z 0-9 - _``)::

    bodycam/<site>/<device>/up/seg/offer     device -> receiver   JSON: "I have this segment" + its manifest
    bodycam/<site>/<device>/up/seg/chunk     device -> receiver   binary: header + a piece of the ciphertext
    bodycam/<site>/<device>/down/seg/status  receiver -> device   JSON: which chunks it holds, or why it refuses
    bodycam/<site>/<device>/down/seg/receipt receiver -> device   the signed receipt (evidence.receipts)

Everything is QoS 1, nothing retained. A device may only write ``up/…`` (and the other modules'
device topics: ``status``, ``telemetry``, ``events``, ``cmd/result``) and read ``down/…`` and ``cmd`` of its
own namespace; the broker enforces that with ACL patterns on the certificate CN (docs/BROKER.md), so
the receiver may trust the topic's device to be the sender's *broker identity*, and checks that the
signed manifest says the same.

The conversation for one segment: offer -> status (the chunks the receiver already holds) -> the
missing chunks -> receipt. Any message may be lost or repeated; see docs/PROTOCOL.md for why that is
harmless. Versioning: every payload carries ``v``; a receiver answers an unknown major version with
status ``rejected``/``unsupported_version`` naming the versions it speaks.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from dataclasses import dataclass
from typing import Iterable

from base.canonical import canonical_json
from base.errors import BodycamError
from base.ids import is_id, is_stem

VERSION = 1
SUPPORTED_VERSIONS = (1,)
ROOT = "bodycam"

OFFER, CHUNK = "offer", "chunk"
STATUS, RECEIPT = "status", "receipt"
UP_KINDS = (OFFER, CHUNK)
DOWN_KINDS = (STATUS, RECEIPT)

#: Chunk frame: magic, version byte, header length (big-endian u16), canonical JSON header, data.
CHUNK_MAGIC = b"BCCH"
_CHUNK_PREFIX = struct.Struct(">4sBH")
MAX_HEADER_BYTES = 1024
#: An offer holds the manifest (about 3 KB for a 10 s segment at 30 fps, 40 KB at most for 60 s at 60 fps).
MAX_OFFER_BYTES = 256 * 1024
MAX_STATUS_BYTES = 64 * 1024
MIN_CHUNK_SIZE = 4 * 1024
#: Chunk sizes are whole pages, so receivers writing different chunks of one file never share a page.
CHUNK_ALIGN = 4 * 1024
MAX_CHUNK_SIZE = 8 * 1024 * 1024

# Status states and rejection codes.
RECEIVING, REJECTED = "receiving", "rejected"
#: The device should re-offer (or resend) soon: the receiver lost state or got a damaged chunk.
RETRYABLE_CODES = frozenset({"no_offer", "bad_chunk", "hash_mismatch", "busy", "storage_error"})
#: Nothing the device can fix by resending this segment; it waits long and raises a fault.
SEGMENT_CODES = frozenset({"bad_manifest", "bad_signature", "mismatch", "oversize", "conflict", "malformed"})
#: Concern every segment of the device: it pauses the whole uplink.
DEVICE_CODES = frozenset({"unknown_device", "unsupported_version"})
CODES = RETRYABLE_CODES | SEGMENT_CODES | DEVICE_CODES

_HEX64 = re.compile(r"[0-9a-f]{64}")


class ProtocolError(BodycamError):
    """A message does not follow the protocol; ``code`` is the rejection code to answer with."""

    def __init__(self, message: str, code: str = "malformed", stem: str | None = None):
        super().__init__(message)
        self.code = code
        #: The segment the message was about, when that much could be read.
        self.stem = stem


# -- topics -----------------------------------------------------------------------------------------

def _check_ids(site: str, device: str) -> None:
    if not is_id(site) or not is_id(device):
        raise ProtocolError(f"site {site!r} and device {device!r} must be 1-64 characters of a-z, 0-9, '-' or '_'")


def up_topic(site: str, device: str, kind: str) -> str:
    _check_ids(site, device)
    if kind not in UP_KINDS:
        raise ValueError(f"unknown uplink message kind {kind!r}")
    return f"{ROOT}/{site}/{device}/up/seg/{kind}"


def down_topic(site: str, device: str, kind: str) -> str:
    _check_ids(site, device)
    if kind not in DOWN_KINDS:
        raise ValueError(f"unknown downlink message kind {kind!r}")
    return f"{ROOT}/{site}/{device}/down/seg/{kind}"


def device_filter(site: str, device: str) -> str:
    """What a device subscribes to: its own downlink."""
    _check_ids(site, device)
    return f"{ROOT}/{site}/{device}/down/seg/+"


def receiver_filter(share_group: str = "") -> str:
    """What receivers subscribe to; with a group, an MQTT v5 shared subscription that splits the load."""
    base = f"{ROOT}/+/+/up/seg/+"
    if share_group:
        if not is_id(share_group):
            raise ValueError(f"share group {share_group!r} must be 1-64 characters of a-z, 0-9, '-' or '_'")
        return f"$share/{share_group}/{base}"
    return base


@dataclass(frozen=True, slots=True)
class Route:
    """Where a message came from, parsed from its topic."""

    site: str
    device: str
    direction: str  # "up" or "down"
    kind: str


def parse_topic(topic: str) -> Route:
    parts = topic.split("/")
    if len(parts) != 6 or parts[0] != ROOT or parts[3] not in ("up", "down") or parts[4] != "seg":
        raise ProtocolError(f"topic {topic[:120]!r} is not a segment-transfer topic")
    site, device, direction, kind = parts[1], parts[2], parts[3], parts[5]
    _check_ids(site, device)
    if kind not in (UP_KINDS if direction == "up" else DOWN_KINDS):
        raise ProtocolError(f"topic {topic[:120]!r}: unknown message kind {kind!r}")
    return Route(site, device, direction, kind)


# -- JSON helpers -----------------------------------------------------------------------------------

#: Sorted keys, no spaces, ASCII: the same bytes in every implementation (JCS for our value types).
canonical = canonical_json


def _load_json(payload: bytes, what: str, limit: int) -> dict:
    if len(payload) > limit:
        raise ProtocolError(f"{what} of {len(payload)} bytes exceeds the limit of {limit}", "oversize")
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ProtocolError(f"{what} is not valid JSON") from None
    if not isinstance(doc, dict):
        raise ProtocolError(f"{what} is not a JSON object")
    v = doc.get("v")
    if not _is_int(v):
        raise ProtocolError(f"{what} has no version number 'v'")
    if v not in SUPPORTED_VERSIONS:
        raise ProtocolError(f"{what} has version {v}; this side speaks {list(SUPPORTED_VERSIONS)}",
                            "unsupported_version")
    return doc


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _field(doc: dict, key: str, check, what: str):
    value = doc.get(key)
    if not check(value):
        raise ProtocolError(f"{what}: field {key!r} is missing or invalid")
    return value


def chunk_count(size: int, chunk_size: int) -> int:
    """Chunks of a ciphertext of ``size`` bytes; an empty ciphertext still travels as one empty chunk."""
    return max(1, -(-size // chunk_size))


# -- offer ------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Offer:
    """The device announces one sealed segment: its manifest and how it will be cut into chunks."""

    stem: str
    seq: int
    size: int
    sha256: str
    chunk_size: int
    manifest: bytes

    @property
    def chunks(self) -> int:
        return chunk_count(self.size, self.chunk_size)

    @property
    def manifest_sha256(self) -> str:
        return hashlib.sha256(self.manifest).hexdigest()

    def encode(self) -> bytes:
        return canonical({"v": VERSION, "type": OFFER, "stem": self.stem, "seq": self.seq, "size": self.size,
                          "sha256": self.sha256, "chunk_size": self.chunk_size, "chunks": self.chunks,
                          "manifest": self.manifest.decode("ascii")})

    @classmethod
    def decode(cls, payload: bytes) -> Offer:
        doc = _load_json(payload, "offer", MAX_OFFER_BYTES)
        what = "offer"
        if doc.get("type") != OFFER:
            raise ProtocolError("offer: 'type' is not 'offer'")
        stem = _field(doc, "stem", is_stem, what)
        try:
            return cls._decode_rest(doc, stem)
        except ProtocolError as exc:
            exc.stem = stem
            raise

    @classmethod
    def _decode_rest(cls, doc: dict, stem: str) -> Offer:
        what = "offer"
        seq = _field(doc, "seq", lambda v: _is_int(v) and v >= 1, what)
        size = _field(doc, "size", lambda v: _is_int(v) and v >= 0, what)
        sha = _field(doc, "sha256", lambda v: isinstance(v, str) and _HEX64.fullmatch(v), what)
        chunk_size = _field(doc, "chunk_size", lambda v: _is_int(v) and MIN_CHUNK_SIZE <= v <= MAX_CHUNK_SIZE
                            and v % CHUNK_ALIGN == 0, what)
        manifest = _field(doc, "manifest", lambda v: isinstance(v, str) and v.isascii() and v, what)
        offer = cls(stem, seq, size, sha, chunk_size, manifest.encode("ascii"))
        if doc.get("chunks") != offer.chunks:
            raise ProtocolError(f"offer: 'chunks' is {doc.get('chunks')!r}, but {size} bytes in chunks of "
                                f"{chunk_size} make {offer.chunks}")
        if not stem.endswith(f"-{seq:010d}"):
            raise ProtocolError(f"offer: stem {stem} does not carry seq {seq}")
        return offer


# -- chunk ------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ChunkHeader:
    """Which piece of which segment a chunk is; ``sha256`` is the hash of the chunk's own bytes."""

    stem: str
    index: int
    chunks: int
    offset: int
    length: int
    sha256: str
    #: SHA-256 of the whole ciphertext: ties the chunk to one exact segment (the manifest's hash).
    segment_sha256: str
    #: The chunk size of the offer this chunk belongs to (every chunk but the last has this length).
    chunk_size: int

    def to_doc(self) -> dict:
        return {"v": VERSION, "stem": self.stem, "i": self.index, "n": self.chunks, "off": self.offset,
                "len": self.length, "sha256": self.sha256, "seg": self.segment_sha256, "cs": self.chunk_size}


def encode_chunk(stem: str, index: int, chunks: int, offset: int, data, segment_sha256: str,
                 chunk_size: int) -> bytes:
    """One chunk message; ``data`` may be a memoryview into the ciphertext."""
    header = ChunkHeader(stem, index, chunks, offset, len(data), hashlib.sha256(data).hexdigest(), segment_sha256,
                         chunk_size)
    head = canonical(header.to_doc())
    return b"".join((_CHUNK_PREFIX.pack(CHUNK_MAGIC, VERSION, len(head)), head, data))


def decode_chunk(payload: bytes, max_chunk: int, *, verify: bool = True) -> tuple[ChunkHeader, memoryview]:
    """Parse and check a chunk message: framing, header fields, and (``verify``) the data against its hash.

    The receiver passes ``verify=False``: it checks the assembled segment against the signed manifest,
    and each chunk against its hash only when that fails (backoffice.store), which halves its hashing.
    """
    if len(payload) > max_chunk + _CHUNK_PREFIX.size + MAX_HEADER_BYTES:
        raise ProtocolError(f"chunk message of {len(payload)} bytes exceeds the limit for chunks of "
                            f"{max_chunk} bytes", "oversize")
    if len(payload) < _CHUNK_PREFIX.size:
        raise ProtocolError("chunk message is shorter than its frame header")
    magic, version, head_len = _CHUNK_PREFIX.unpack_from(payload)
    if magic != CHUNK_MAGIC:
        raise ProtocolError("chunk message does not start with the chunk magic 'BCCH'")
    if version not in SUPPORTED_VERSIONS:
        raise ProtocolError(f"chunk has version {version}; this side speaks {list(SUPPORTED_VERSIONS)}",
                            "unsupported_version")
    start = _CHUNK_PREFIX.size
    if head_len > MAX_HEADER_BYTES or start + head_len > len(payload):
        raise ProtocolError("chunk header length is out of range")
    doc = _load_json(bytes(payload[start:start + head_len]), "chunk header", MAX_HEADER_BYTES)
    what = "chunk header"
    header = ChunkHeader(
        stem=_field(doc, "stem", is_stem, what),
        index=_field(doc, "i", lambda v: _is_int(v) and v >= 0, what),
        chunks=_field(doc, "n", lambda v: _is_int(v) and v >= 1, what),
        offset=_field(doc, "off", lambda v: _is_int(v) and v >= 0, what),
        length=_field(doc, "len", lambda v: _is_int(v) and 0 <= v <= max_chunk, what),
        sha256=_field(doc, "sha256", lambda v: isinstance(v, str) and _HEX64.fullmatch(v), what),
        segment_sha256=_field(doc, "seg", lambda v: isinstance(v, str) and _HEX64.fullmatch(v), what),
        chunk_size=_field(doc, "cs", lambda v: _is_int(v) and MIN_CHUNK_SIZE <= v <= MAX_CHUNK_SIZE
                          and v % CHUNK_ALIGN == 0, what))
    stem = header.stem
    if header.index >= header.chunks:
        raise ProtocolError(f"chunk index {header.index} is not below the chunk count {header.chunks}", stem=stem)
    if header.chunk_size > max_chunk:
        raise ProtocolError(f"chunk size {header.chunk_size} exceeds the limit of {max_chunk}", "oversize", stem)
    if header.offset != header.index * header.chunk_size or header.length > header.chunk_size:
        raise ProtocolError(f"chunk {header.index} of {stem}: offset {header.offset} and length {header.length} "
                            f"do not fit chunks of {header.chunk_size} bytes", stem=stem)
    data = memoryview(payload)[start + head_len:]
    if len(data) != header.length:
        raise ProtocolError(f"chunk carries {len(data)} bytes, its header says {header.length}", stem=stem)
    if verify and hashlib.sha256(data).hexdigest() != header.sha256:
        raise ProtocolError(f"chunk {header.index} of {stem}: data does not match its SHA-256 "
                            "(damaged in transit)", "bad_chunk", stem)
    return header, data


# -- status -----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Status:
    """The receiver's answer to an offer or a chunk it cannot use.

    ``have`` lists half-open ranges ``[start, end)`` of chunk indices the receiver holds for exactly
    this segment (same ciphertext hash and chunk size). ``rejected`` carries a ``code`` (see the
    ``*_CODES`` sets) and a one-sentence ``reason`` for logs and the device's fault display.
    """

    stem: str | None
    state: str
    receiver: str
    have: tuple[tuple[int, int], ...] = ()
    code: str | None = None
    reason: str | None = None
    sha256: str | None = None
    chunk_size: int | None = None

    def encode(self) -> bytes:
        doc = {"v": VERSION, "type": STATUS, "stem": self.stem, "state": self.state, "receiver": self.receiver,
               "have": [list(r) for r in self.have]}
        for key in ("code", "reason", "sha256", "chunk_size"):
            value = getattr(self, key)
            if value is not None:
                doc[key] = value
        return canonical(doc)

    @classmethod
    def decode(cls, payload: bytes) -> Status:
        doc = _load_json(payload, "status", MAX_STATUS_BYTES)
        what = "status"
        if doc.get("type") != STATUS:
            raise ProtocolError("status: 'type' is not 'status'")
        stem = _field(doc, "stem", lambda v: v is None or is_stem(v), what)
        state = _field(doc, "state", lambda v: v in (RECEIVING, REJECTED), what)
        receiver = _field(doc, "receiver", lambda v: isinstance(v, str) and 0 < len(v) <= 128, what)
        have = _field(doc, "have", lambda v: isinstance(v, list) and all(
            isinstance(r, list) and len(r) == 2 and _is_int(r[0]) and _is_int(r[1]) and 0 <= r[0] < r[1]
            for r in v), what)
        code = doc.get("code")
        if state == REJECTED and not isinstance(code, str):
            raise ProtocolError("status: a rejection without a code")
        reason = doc.get("reason")
        sha = doc.get("sha256")
        chunk_size = doc.get("chunk_size")
        return cls(stem, state, receiver, tuple((a, b) for a, b in have),
                   code if isinstance(code, str) else None, str(reason)[:500] if reason is not None else None,
                   sha if isinstance(sha, str) and _HEX64.fullmatch(sha) else None,
                   chunk_size if _is_int(chunk_size) else None)

    def indices(self) -> set[int]:
        return {i for a, b in self.have for i in range(a, b)}


def to_ranges(indices: Iterable[int]) -> tuple[tuple[int, int], ...]:
    """Sorted indices as half-open ranges: {0,1,2,5} -> ((0, 3), (5, 6))."""
    out: list[list[int]] = []
    for i in sorted(set(indices)):
        if out and out[-1][1] == i:
            out[-1][1] = i + 1
        else:
            out.append([i, i + 1])
    return tuple((a, b) for a, b in out)
