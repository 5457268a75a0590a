"""The sealed-segment format: encrypt a segment to the municipality, sign its manifest, check and open both.

A sealed segment is two files with one stem, ``<device_id>-<seq:010d>``:

* ``<stem>.age`` — the segment's plaintext, age-encrypted (X25519) to every configured recipient.
  Stock ``age -d -i evidence.key`` opens it. The device holds only recipients, so it cannot. The
  plaintext depends on the manifest's ``format``: ``bodycam-segment/1`` (pictures only) is the Annex-B
  H.264 elementary stream; ``bodycam-segment/2`` (pictures and sound) is one fragmented MP4 with an
  H.264 and an AAC track (:mod:`evidence.mp4`), which stock ``ffprobe``/``ffmpeg`` read. A segment
  without sound is always sealed as ``/1``, so devices without a microphone write what they always
  wrote, and every reader reads both.
* ``<stem>.manifest.json`` — what the segment is, signed with the device's Ed25519 key (fields in
  :data:`MANIFEST_FIELDS`). The signature sits inside the document, in ``"signature"``, so the spool and
  the uplink move one JSON file and can read ``seq`` and ``ciphertext_sha256`` with ``json.loads``.
  A few fields are optional (:data:`OPTIONAL_SEGMENT_FIELDS`, e.g. ``pre_event_mode``): added after the
  format was fixed, they may be absent, and every reader accepts a manifest with or without them.

**The incident end marker** (``bodycam-incident-end/1``) is a chain entry without video: when the agent
restarts after a crash or power loss in the middle of an incident, it seals one before it records
anything new, naming the cut incident, the ``reason`` (``restart``) and ``last_frame_time`` (the end of
the last frame sealed before the cut); its ``sealed_time`` is the restart. It takes the incident's next
segment index with ``final: true``, so the incident verifies as closed, and it is signed and chained
like a segment, so it can neither be forged nor removed unnoticed. Its ``<stem>.age`` is empty
(``ciphertext_bytes`` 0, ``ciphertext_sha256`` of no bytes), so spool, uplink, receiver and store move
it like any segment. :class:`Manifest` parses both formats; for a marker the video fields hold neutral
values (no frames, ``start_time`` = ``end_time`` = ``last_frame_time``) and :attr:`Manifest.is_end_marker`
is true.

**Canonical form.** The manifest file is exactly ``canonical(document) + "\\n"`` where ``canonical`` is
``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=True)``; the signature is Ed25519 over
``canonical(document without "signature")`` (no newline). Strings are printable ASCII and numbers are
integers, except ``codec.fps`` when it is not whole, so this equals RFC 8785 (JCS) output and verifiers in
other languages can reproduce the signed bytes. A file not in canonical form is rejected: reformatting
would change its SHA-256, which the next manifest's ``prev_manifest_sha256`` pins.

Plaintext never touches disk: frames are encrypted from memory, 64 KiB at a time, and each ciphertext
chunk goes straight to a sink (on the device the spool's :class:`~evidence.spool.SegmentWriter`), so
neither a plaintext copy nor the whole ciphertext of a segment is ever held, and other threads run
between chunks. Python cannot wipe freed memory, so the device should run without swap, or with
encrypted swap.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import math
import os
import re
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol, Sequence

import pyrage
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pyrage import x25519

from base import __version__
from base.legal import PRE_EVENT_MODES
from .chain import ChainState
from base.canonical import canonical_json
from base.errors import BodycamError
from base.ids import OFFICER_ID_RULE, is_id, is_officer_id, stem
from base.utctime import iso_utc
from .keys import DevicePublicKey, DeviceSigningKey, recipient_bytes, recipient_key_id
from .mp4 import segment_parts


logger = logging.getLogger(__name__)

class _Frame(Protocol):
    pts_us: int
    data: bytes
    keyframe: bool


class _Packet(Protocol):
    pts_us: int
    duration_us: int
    data: bytes


class _Stream(Protocol):
    def as_dict(self) -> dict: ...


class Segment(Protocol):
    """What the sealer reads of a segment: :class:`camera.segment.Segment` is one. The format is shared by
    two programs, so it names what it needs instead of importing the camera's type."""

    incident_id: str
    index: int
    final: bool
    pre_event_frames: int
    dropped_frames: int
    stream: _Stream
    frames: Sequence[_Frame]
    #: Sound (format /2): None for a segment of pictures only.
    audio_stream: _Stream | None
    audio: Sequence[_Packet]
    audio_preroll: _Packet | None
    audio_from_us: int | None
    audio_until_us: int | None
    audio_missing_us: int
    #: When the pre-event ring filled (off, announced, standby); None: the manifest leaves it out.
    pre_event_mode: str | None

    @property
    def start_pts_us(self) -> int: ...
    @property
    def start_wall(self) -> float: ...
    @property
    def end_wall(self) -> float: ...
    @property
    def frame_count(self) -> int: ...
    @property
    def first_seq(self) -> int: ...
    @property
    def last_seq(self) -> int: ...


FORMAT = "bodycam-segment/1"
#: A segment with sound: the plaintext is a fragmented MP4 with both tracks.
FORMAT_AV = "bodycam-segment/2"
END_FORMAT = "bodycam-incident-end/1"
#: Why an incident ended without its final segment, as an end marker says.
END_REASONS = ("restart",)
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
CIPHERTEXT_SUFFIX = ".age"
MANIFEST_SUFFIX = ".manifest.json"
AGE_MAGIC = b"age-encryption.org/v1\n"

_HEX64 = re.compile(r"[0-9a-f]{64}")
_KEY_ID = re.compile(r"[0-9a-f]{16}")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


class ManifestError(BodycamError):
    """A manifest is not a well-formed, canonical manifest of this format."""


class SignatureError(ManifestError):
    """A manifest's signature does not verify with the enrolled device key."""


class SealError(BodycamError):
    """A segment cannot be sealed with the given context (bad ids, no recipients, key mismatch)."""


class DecryptionError(BodycamError):
    """A sealed segment cannot be decrypted with the given identity."""


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_text(v) -> bool:
    return isinstance(v, str) and 0 < len(v) <= 256 and all(" " <= c <= "~" for c in v)


def _is_nat(v) -> bool:
    return _is_int(v) and v >= 0


#: Every manifest field and the check its value must pass (besides canonical form and signature).
MANIFEST_FIELDS: dict[str, Callable[[object], object]] = {
    "format": lambda v: v == FORMAT,
    "device_id": is_id,
    "site": is_id,
    "incident_id": _is_text,
    "segment_index": _is_nat,
    "final": lambda v: isinstance(v, bool),
    "seq": lambda v: _is_int(v) and v >= 1,
    "prev_manifest_sha256": lambda v: v is None or (isinstance(v, str) and _HEX64.fullmatch(v)),
    "start_time": lambda v: isinstance(v, str) and _TIME.fullmatch(v),
    "end_time": lambda v: isinstance(v, str) and _TIME.fullmatch(v),
    "sealed_time": lambda v: isinstance(v, str) and _TIME.fullmatch(v),
    "clock_sync": _is_text,
    "codec": lambda v: isinstance(v, dict) and _is_text(v.get("codec")) and _is_nat(v.get("width"))
    and _is_nat(v.get("height")) and isinstance(v.get("fps"), (int, float)) and not isinstance(v.get("fps"), bool)
    and v.get("fps") > 0,
    "frame_count": lambda v: _is_int(v) and v >= 1,
    "first_frame_seq": _is_int,
    "last_frame_seq": _is_int,
    "pre_event_frames": _is_nat,
    "dropped_frames": _is_nat,
    "start_pts_us": _is_int,
    "frame_pts_us": lambda v: isinstance(v, list) and v and all(_is_int(x) for x in v),
    "plaintext_bytes": _is_nat,
    "ciphertext_bytes": _is_nat,
    "ciphertext_sha256": lambda v: isinstance(v, str) and _HEX64.fullmatch(v),
    "software_version": _is_text,
    "signing_key_id": lambda v: isinstance(v, str) and _KEY_ID.fullmatch(v),
    "recipient_key_ids": lambda v: isinstance(v, list) and v and all(isinstance(x, str) and _KEY_ID.fullmatch(x)
                                                                       for x in v),
    "signature": lambda v: isinstance(v, str) and len(v) == 88,
}

def _is_audio(v) -> bool:
    return (isinstance(v, dict) and set(v) == {"codec", "sample_rate", "channels", "bitrate", "frame_samples",
                                               "config", "source"}
            and _is_text(v["codec"]) and _is_text(v["source"]) and isinstance(v["config"], str)
            and re.fullmatch(r"(?:[0-9a-f]{2}){1,64}", v["config"]) is not None
            and all(_is_int(v[k]) and v[k] > 0 for k in ("sample_rate", "channels", "bitrate", "frame_samples")))


#: A segment with sound has every field of /1 and these: the sound's format, how many packets it
#: holds (without the pre-roll), whether the MP4's first sound sample is the pre-roll, the span the
#: sound belongs to (µs relative to ``start_pts_us``, like ``frame_pts_us``) and the sound missing in it.
MANIFEST_FIELDS_AV: dict[str, Callable[[object], object]] = {
    **MANIFEST_FIELDS,
    "format": lambda v: v == FORMAT_AV,
    "audio": _is_audio,
    "audio_packets": _is_nat,
    "audio_preroll": lambda v: isinstance(v, bool),
    "audio_from_us": _is_int,
    "audio_until_us": _is_int,
    "audio_missing_us": _is_nat,
}

#: Fields a segment manifest (/1 and /2) may carry or leave out: manifests sealed before a field existed
#: stay valid, and every reader takes the absent field as unknown (None). ``pre_event_mode`` is when the
#: device's pre-event ring filled before this recording (off, announced, standby; see base.legal).
OPTIONAL_SEGMENT_FIELDS: dict[str, Callable[[object], object]] = {
    "pre_event_mode": lambda v: v in PRE_EVENT_MODES,
    # the pseudonymous id of the officer the device was assigned to when the incident's first segment was
    # sealed (officer check-out; absent while nobody was assigned)
    "officer": is_officer_id,
}

#: The fields of an incident end marker (see the module docstring).
END_MARKER_FIELDS: dict[str, Callable[[object], object]] = {
    **{k: MANIFEST_FIELDS[k] for k in ("device_id", "site", "incident_id", "segment_index", "seq",
                                       "prev_manifest_sha256", "sealed_time", "clock_sync", "software_version",
                                       "signing_key_id", "signature")},
    "format": lambda v: v == END_FORMAT,
    "final": lambda v: v is True,
    "reason": lambda v: v in END_REASONS,
    "last_frame_time": lambda v: isinstance(v, str) and _TIME.fullmatch(v),
    "ciphertext_bytes": lambda v: _is_int(v) and v == 0,
    "ciphertext_sha256": lambda v: v == EMPTY_SHA256,
}

_FIELDS_BY_FORMAT = {FORMAT: MANIFEST_FIELDS, FORMAT_AV: MANIFEST_FIELDS_AV, END_FORMAT: END_MARKER_FIELDS}
_OPTIONAL_BY_FORMAT = {FORMAT: OPTIONAL_SEGMENT_FIELDS, FORMAT_AV: OPTIONAL_SEGMENT_FIELDS, END_FORMAT: {}}
#: What a marker's :class:`Manifest` holds in the fields that describe video.
_NO_VIDEO = {"codec": {}, "frame_count": 0, "first_frame_seq": 0, "last_frame_seq": 0, "pre_event_frames": 0,
             "dropped_frames": 0, "start_pts_us": 0, "frame_pts_us": (), "plaintext_bytes": 0,
             "recipient_key_ids": ()}


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest. ``raw`` are the exact file bytes; ``sha256`` is their hash (the chain link)."""

    format: str
    device_id: str
    site: str
    incident_id: str
    segment_index: int
    final: bool
    seq: int
    prev_manifest_sha256: str | None
    start_time: str
    end_time: str
    sealed_time: str
    clock_sync: str
    codec: dict
    frame_count: int
    first_frame_seq: int
    last_frame_seq: int
    pre_event_frames: int
    dropped_frames: int
    start_pts_us: int
    frame_pts_us: tuple[int, ...]
    plaintext_bytes: int
    ciphertext_bytes: int
    ciphertext_sha256: str
    software_version: str
    signing_key_id: str
    recipient_key_ids: tuple[str, ...]
    signature: str
    raw: bytes = field(repr=False)
    sha256: str
    #: End markers only: why the incident ended (``restart``) and when its last sealed frame ended.
    reason: str | None = None
    last_frame_time: str | None = None
    #: Segments with sound (format /2) only; see :data:`MANIFEST_FIELDS_AV`.
    audio: dict | None = None
    audio_packets: int = 0
    audio_preroll: bool = False
    audio_from_us: int | None = None
    audio_until_us: int | None = None
    audio_missing_us: int = 0
    #: The assigned officer's pseudonymous id; None when nobody was assigned (or the device predates check-out).
    officer: str | None = None
    #: Optional (see :data:`OPTIONAL_SEGMENT_FIELDS`): None when the manifest does not say.
    pre_event_mode: str | None = None

    @property
    def stem(self) -> str:
        return stem_for(self.device_id, self.seq)

    @property
    def is_end_marker(self) -> bool:
        return self.format == END_FORMAT

    @property
    def has_audio(self) -> bool:
        """True for a segment with sound, whose plaintext is an MP4 (format /2)."""
        return self.format == FORMAT_AV

    def signed_bytes(self) -> bytes:
        doc = json.loads(self.raw)
        del doc["signature"]
        return canonical_json(doc)

    @classmethod
    def parse(cls, data: bytes) -> Manifest:
        """Check structure and canonical form; says nothing about the signature (see :func:`verify_manifest`)."""
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ManifestError("manifest is not valid JSON") from None
        if not isinstance(doc, dict):
            raise ManifestError("manifest is not a JSON object")
        fields = _FIELDS_BY_FORMAT.get(doc.get("format"))
        if fields is None:
            raise ManifestError(f"manifest format {str(doc.get('format'))[:40]!r} is not one of "
                                f"{', '.join(map(repr, _FIELDS_BY_FORMAT))}")
        optional = _OPTIONAL_BY_FORMAT[doc["format"]]
        missing = [k for k in fields if k not in doc]
        if missing:
            raise ManifestError(f"manifest lacks field(s) {', '.join(missing)}")
        unknown = sorted(set(doc) - set(fields) - set(optional))
        if unknown:
            raise ManifestError(f"manifest has unknown field(s) {', '.join(unknown)[:80]}")
        for key, check in [*fields.items(), *((k, c) for k, c in optional.items() if k in doc)]:
            if not check(doc[key]):
                raise ManifestError(f"manifest field {key!r} has an invalid value")
        if data != canonical_json(doc) + b"\n":
            raise ManifestError("manifest is not in canonical form (was it reformatted or edited?)")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in doc.items()}
        if fields is END_MARKER_FIELDS:
            values = {**_NO_VIDEO, "start_time": doc["last_frame_time"], "end_time": doc["last_frame_time"],
                      **values}
        elif len(doc["frame_pts_us"]) != doc["frame_count"]:
            raise ManifestError("manifest lists a different number of frame times than frame_count")
        return cls(**values, raw=bytes(data), sha256=hashlib.sha256(data).hexdigest())


class CiphertextSink(Protocol):
    """Where :meth:`Sealer.seal` streams the ciphertext (the spool's ``SegmentWriter`` on the device)."""

    def write(self, data: bytes | memoryview, /) -> object: ...


@dataclass(frozen=True)
class SealedSegment:
    """One sealed segment: the signed manifest, and the ciphertext unless it was streamed to a sink.

    Written by the spool as ``<stem>.age`` + ``<stem>.manifest.json``.
    """

    stem: str
    #: The whole ciphertext, or None when :meth:`Sealer.seal` streamed it into a sink.
    ciphertext: bytes | None = field(repr=False)
    manifest: bytes = field(repr=False)
    seq: int
    incident_id: str
    segment_index: int
    final: bool
    ciphertext_sha256: str
    manifest_sha256: str
    ciphertext_bytes: int

    @property
    def ciphertext_name(self) -> str:
        return self.stem + CIPHERTEXT_SUFFIX

    @property
    def manifest_name(self) -> str:
        return self.stem + MANIFEST_SUFFIX


#: The file stem of a sealed segment (``<device>-<seq:010d>``); sorts by sequence number within a device.
stem_for = stem


class Sealer:
    """Seals segments of one device: encrypt to all recipients, sign the manifest, link it to the chain.

    Call :meth:`seal`, have the spool write the result durably, then :meth:`commit` it, which advances
    the chain head. If the spool write fails, do not commit: the next seal reuses the same seq and link.
    Owned by the sealer thread.
    """

    def __init__(self, *, device_id: str, site: str, recipients: Sequence[x25519.Recipient],
                 signing_key: DeviceSigningKey, chain: ChainState):
        if not is_id(device_id):
            raise SealError(f"device id {device_id!r} must be 1-64 characters of a-z, 0-9, '-' or '_'")
        if not is_id(site):
            raise SealError(f"site {site!r} must be 1-64 characters of a-z, 0-9, '-' or '_'")
        if not recipients:
            raise SealError("no recipients given; a segment encrypted to nobody could never be opened")
        if signing_key.public.device_id not in (None, device_id):
            raise SealError(f"the signing key is enrolled for device {signing_key.public.device_id!r}, "
                            f"not {device_id!r}")
        self.device_id = device_id
        self.site = site
        self._recipients = [recipient_bytes(r) for r in recipients]
        self._recipient_ids = sorted(recipient_key_id(r) for r in recipients)
        self._key = signing_key
        self.chain = chain

    def next_stem(self) -> str:
        """The stem the next sealed segment gets (so its file can be opened before sealing starts)."""
        return stem_for(self.device_id, self.chain.head()[0] + 1)

    def seal(self, segment: Segment, *, clock_sync: str, sealed_at: float | None = None,
             out: CiphertextSink | None = None, officer: str | None = None) -> SealedSegment:
        """Encrypt and sign one segment; the chain is read, not advanced.

        With ``out`` the ciphertext is streamed into it chunk by chunk (the result's ``ciphertext`` is
        None); without, it is collected in memory (tests, benchmarks, tools). ``officer`` is the assigned
        officer's pseudonymous id (the manifest's ``officer``); None leaves the field out.
        """
        if not _is_text(segment.incident_id):
            raise SealError(f"incident id {segment.incident_id!r} must be 1-256 printable ASCII characters")
        if not _is_text(clock_sync):
            raise SealError(f"clock sync state {clock_sync!r} must be 1-256 printable ASCII characters")
        if officer is not None and not is_officer_id(officer):
            raise SealError(f"officer id {officer!r} must be {OFFICER_ID_RULE}")
        seq, prev = self.chain.head()
        seq += 1

        started = time.perf_counter()
        codec = {k: _number(v) for k, v in segment.stream.as_dict().items()}
        audio_stream = getattr(segment, "audio_stream", None)
        if audio_stream is None:
            total, parts = segment.nbytes, (f.data for f in segment.frames)
        else:
            audio = {k: _number(v) for k, v in audio_stream.as_dict().items()}
            total, parts = segment_parts(segment.frames, codec, segment.audio, segment.audio_preroll, audio)
        collected = bytearray() if out is None else None
        ciphertext_sha256, plaintext_bytes, ciphertext_bytes = _encrypt(
            parts, total, self._recipients, collected.extend if out is None else out.write)
        ciphertext = None if collected is None else bytes(collected)
        del collected
        base = segment.start_pts_us
        doc = {
            "format": FORMAT if audio_stream is None else FORMAT_AV,
            "device_id": self.device_id,
            "site": self.site,
            "incident_id": segment.incident_id,
            "segment_index": segment.index,
            "final": segment.final,
            "seq": seq,
            "prev_manifest_sha256": prev,
            "start_time": iso_utc(segment.start_wall),
            "end_time": iso_utc(segment.end_wall),
            "sealed_time": iso_utc(time.time() if sealed_at is None else sealed_at),
            "clock_sync": clock_sync,
            "codec": codec,
            "frame_count": segment.frame_count,
            "first_frame_seq": segment.first_seq,
            "last_frame_seq": segment.last_seq,
            "pre_event_frames": segment.pre_event_frames,
            "dropped_frames": segment.dropped_frames,
            "start_pts_us": base,
            "frame_pts_us": [f.pts_us - base for f in segment.frames],
            "plaintext_bytes": plaintext_bytes,
            "ciphertext_bytes": ciphertext_bytes,
            "ciphertext_sha256": ciphertext_sha256,
            "software_version": __version__,
            "signing_key_id": self._key.key_id,
            "recipient_key_ids": self._recipient_ids,
        }
        if officer is not None:
            doc["officer"] = officer
        if audio_stream is not None:
            doc.update({
                "audio": audio,
                "audio_packets": len(segment.audio),
                "audio_preroll": segment.audio_preroll is not None,
                "audio_from_us": segment.audio_from_us - base,
                "audio_until_us": segment.audio_until_us - base,
                "audio_missing_us": segment.audio_missing_us,
            })
            for key, check in MANIFEST_FIELDS_AV.items():
                if key != "signature" and not check(doc[key]):
                    raise SealError(f"cannot seal a segment with sound: {key} = {doc[key]!r} is not a valid value")
        mode = getattr(segment, "pre_event_mode", None)
        if mode is not None:
            if not OPTIONAL_SEGMENT_FIELDS["pre_event_mode"](mode):
                raise SealError(f"pre-event mode {mode!r} is not one of {', '.join(PRE_EVENT_MODES)}")
            doc["pre_event_mode"] = mode
        doc["signature"] = base64.b64encode(self._key.sign(canonical_json(doc))).decode("ascii")
        manifest = canonical_json(doc) + b"\n"
        sealed = SealedSegment(
            stem=stem_for(self.device_id, seq), ciphertext=ciphertext, manifest=manifest, seq=seq,
            incident_id=segment.incident_id, segment_index=segment.index, final=segment.final,
            ciphertext_sha256=ciphertext_sha256, manifest_sha256=hashlib.sha256(manifest).hexdigest(),
            ciphertext_bytes=ciphertext_bytes)
        logger.debug("sealed %s (%d bytes, %d frames) in %.1f ms", sealed.stem, plaintext_bytes,
                     segment.frame_count, (time.perf_counter() - started) * 1e3)
        return sealed

    def seal_end_marker(self, *, incident_id: str, segment_index: int, last_frame_time: str, reason: str,
                        clock_sync: str, sealed_at: float | None = None) -> SealedSegment:
        """Sign an incident end marker as the next chain entry (store it, then :meth:`commit` it).

        ``segment_index`` is the one after the incident's last sealed segment; ``last_frame_time`` is
        that segment's ``end_time``.
        """
        if reason not in END_REASONS:
            raise SealError(f"end-marker reason {reason!r} is not one of {', '.join(END_REASONS)}")
        seq, prev = self.chain.head()
        seq += 1
        doc = {
            "format": END_FORMAT,
            "device_id": self.device_id,
            "site": self.site,
            "incident_id": incident_id,
            "segment_index": segment_index,
            "final": True,
            "seq": seq,
            "prev_manifest_sha256": prev,
            "reason": reason,
            "last_frame_time": last_frame_time,
            "sealed_time": iso_utc(time.time() if sealed_at is None else sealed_at),
            "clock_sync": clock_sync,
            "ciphertext_bytes": 0,
            "ciphertext_sha256": EMPTY_SHA256,
            "software_version": __version__,
            "signing_key_id": self._key.key_id,
        }
        for key, check in END_MARKER_FIELDS.items():
            if key != "signature" and not check(doc[key]):
                raise SealError(f"cannot seal an end marker: {key} = {doc[key]!r} is not a valid value")
        doc["signature"] = base64.b64encode(self._key.sign(canonical_json(doc))).decode("ascii")
        manifest = canonical_json(doc) + b"\n"
        return SealedSegment(
            stem=stem_for(self.device_id, seq), ciphertext=b"", manifest=manifest, seq=seq, incident_id=incident_id,
            segment_index=segment_index, final=True, ciphertext_sha256=EMPTY_SHA256,
            manifest_sha256=hashlib.sha256(manifest).hexdigest(), ciphertext_bytes=0)

    def commit(self, sealed: SealedSegment) -> None:
        """Advance the chain head to ``sealed`` once the spool holds it durably."""
        self.chain.advance(sealed.seq, sealed.manifest_sha256)

    def catch_up(self, newest_manifest: bytes | None) -> bool:
        """At start: adopt the spool's newest manifest as chain head if it is ahead (a crash between the
        spool write and :meth:`commit`). It must be this device's, signed with this key. True if moved."""
        if newest_manifest is None:
            return False
        manifest = verify_manifest(newest_manifest, self._key.public)
        if manifest.device_id != self.device_id:
            raise SealError(f"the spool's newest manifest belongs to device {manifest.device_id!r}, "
                            f"not {self.device_id!r}; is this the right spool?")
        return self.chain.adopt(manifest.seq, manifest.sha256)


def verify_manifest(manifest_bytes: bytes, device_public_key: DevicePublicKey) -> Manifest:
    """Parse a manifest and check its signature with an enrolled device key; raises on any problem."""
    manifest = Manifest.parse(manifest_bytes)
    if manifest.signing_key_id != device_public_key.key_id:
        raise SignatureError(f"manifest was signed with key {manifest.signing_key_id}, "
                             f"not with the given device key {device_public_key.key_id}")
    if device_public_key.device_id not in (None, manifest.device_id):
        raise SignatureError(f"manifest claims device {manifest.device_id!r} but its key is enrolled for "
                             f"{device_public_key.device_id!r}")
    try:
        signature = base64.b64decode(manifest.signature, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("manifest signature is not valid base64") from None
    if not device_public_key.verify(signature, manifest.signed_bytes()):
        raise SignatureError("manifest signature does not verify (manifest altered or not signed by this device)")
    return manifest


def decrypt(ciphertext: bytes, identity: x25519.Identity | Iterable[x25519.Identity]) -> bytes:
    """Open a sealed segment's ciphertext in memory with the municipality's identity (back office only)."""
    identities = [identity] if isinstance(identity, x25519.Identity) else list(identity)
    if not ciphertext.startswith(AGE_MAGIC):
        raise DecryptionError("the ciphertext is not in age format (damaged or wrong file)")
    try:
        return pyrage.decrypt(ciphertext, identities)
    except pyrage.DecryptError as exc:
        if "No matching keys" in str(exc):
            raise DecryptionError("the evidence key does not match any recipient of this segment "
                                  "(wrong evidence.key)") from None
        raise DecryptionError(f"the ciphertext is damaged and cannot be decrypted ({exc})") from None




def _number(v):
    """Whole floats as integers and ASCII-only strings, so the canonical form stays JCS-compatible."""
    if isinstance(v, str) and not _is_text(v):
        raise SealError(f"codec parameter {v!r} must be 1-256 printable ASCII characters")
    if isinstance(v, float):
        if not math.isfinite(v):
            raise SealError(f"codec parameter {v!r} is not a finite number")
        if v.is_integer():
            return int(v)
    return v


def _encrypt(parts: Iterable[bytes | memoryview], total: int, recipients: list[bytes],
             write: Callable[[memoryview], object]) -> tuple[str, int, int]:
    """age-encrypt ``parts`` (``total`` bytes: the frames, or the MP4's boxes and the frames) straight
    from memory into ``write``, one chunk at a time.

    Returns (SHA-256 hex of the ciphertext, plaintext bytes, ciphertext bytes). ``write`` must consume
    the view before it returns: the buffer behind it is reused for the next chunk.

    Implements the age v1 format (https://age-encryption.org/v1, C2SP) for X25519 recipients on OpenSSL's
    ChaCha20-Poly1305 via ``cryptography``. Why not ``pyrage.encrypt``: its pure-Rust cipher measured
    about four times slower than OpenSSL's here (OpenSSL also has ARM64 NEON code for both ChaCha20 and
    Poly1305), which put sealing below 80 % of the stock age CLI, and it holds the GIL for the whole
    segment. Each 64 KiB chunk here is its own call, so other threads run between chunks. The tests open
    the output with the stock ``age`` CLI and with pyrage, including the chunk-boundary cases.
    """
    file_key = os.urandom(16)
    header = bytearray(AGE_MAGIC)
    for public in recipients:
        ephemeral = X25519PrivateKey.generate()
        share = ephemeral.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        try:
            shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(public))
        except ValueError:
            raise SealError("an age recipient is a weak (low-order) X25519 key; check evidence.pub") from None
        wrap_key = _hkdf(shared, share + public, b"age-encryption.org/v1/X25519")
        body = ChaCha20Poly1305(wrap_key).encrypt(bytes(12), file_key, None)
        header += b"-> X25519 " + _b64(share) + b"\n" + _b64(body) + b"\n"  # 43 columns: one body line
    header += b"---"
    mac = hmac.new(_hkdf(file_key, b"", b"header"), header, hashlib.sha256).digest()
    header += b" " + _b64(mac) + b"\n"
    nonce = os.urandom(16)
    header += nonce
    aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))

    chunks = max(1, -(-total // _AGE_CHUNK))
    digest = hashlib.sha256(header)
    write(memoryview(header))
    written, counter = len(header), 0
    staged = bytearray(_AGE_CHUNK)            # plaintext of the chunk being filled
    sealed_chunk = bytearray(_AGE_CHUNK + 16)  # its ciphertext, reused for every chunk

    def emit(data) -> None:
        nonlocal counter, written
        chunk_nonce = counter.to_bytes(11, "big") + (b"\x01" if counter == chunks - 1 else b"\x00")
        size = len(data) + 16
        with memoryview(sealed_chunk)[:size] as view:
            if _ENCRYPT_INTO:
                aead.encrypt_into(chunk_nonce, data, None, view)
            else:  # cryptography < 45 (e.g. Debian's python3-cryptography)
                view[:] = aead.encrypt(chunk_nonce, bytes(data), None)
            digest.update(view)
            write(view)
        written += size
        counter += 1

    fill = 0
    try:
        for part in parts:
            data = memoryview(part)
            while data:
                take = min(len(data), _AGE_CHUNK - fill)
                staged[fill:fill + take] = data[:take]
                fill += take
                data = data[take:]
                if fill == _AGE_CHUNK:
                    emit(staged)
                    fill = 0
        if fill or total == 0:
            emit(memoryview(staged)[:fill])
    finally:
        staged[:] = bytes(_AGE_CHUNK)  # do not leave a plaintext chunk in memory longer than needed
    if counter != chunks:
        raise SealError(f"segment changed while it was being sealed ({counter} of {chunks} chunks)")
    return digest.hexdigest(), total, written


_AGE_CHUNK = 64 * 1024
_ENCRYPT_INTO = hasattr(ChaCha20Poly1305, "encrypt_into")


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=SHA256(), length=32, salt=salt, info=info).derive(ikm)


def _b64(data: bytes) -> bytes:
    """age's base64: standard alphabet, no padding."""
    return base64.b64encode(data).rstrip(b"=")
