"""What a browser's Media Source Extensions player needs to play an incident segment by segment (web side:
no key here; the plaintext comes from the custodian).

Before any plaintext, :class:`IncidentMedia` lays the incident's segments on one timeline from their signed
manifests (the same rule as the export's MP4, :func:`evidence.export.timeline`): where each starts and how
long it lasts, so the player knows the whole duration at once and which segment to fetch for a seek.

For each segment, :meth:`IncidentMedia.media_segment` turns its plaintext into a self-contained fragmented
MP4 (``ftyp``, ``moov``, ``moof``/``mdat``) and says where it goes::

    sourceBuffer.timestampOffset = segment.timestamp_offset_s;   // before appending it
    sourceBuffer.appendBuffer(segment.data);                     // MediaSource type: segment.mime

Segments with sound (``bodycam-segment/2``) already are such an MP4, written by the device; it is passed
on as decrypted (their sound's pre-roll packet overlaps the previous segment's last packet exactly, and
the player keeps one of the two). Segments without sound (``/1``, raw H.264) are remuxed in memory with
PyAV (:class:`evidence.export.Remuxer`), not re-encoded. One segment's plaintext is held in memory while
this happens; nothing is written to disk.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from base.errors import BodycamError
from evidence.export import ExportError, Remuxer, check_joinable, timeline
from evidence.seal import MANIFEST_SUFFIX, Manifest, ManifestError

logger = logging.getLogger(__name__)


class MediaError(BodycamError):
    """An incident or segment cannot be prepared for playback (no video, mixed formats, undecodable)."""


@dataclass(frozen=True)
class Slot:
    """One segment's place on the incident's timeline (seconds; 0 = the incident's first picture)."""

    stem: str
    start_s: float
    duration_s: float
    format: str
    manifest: Manifest = field(repr=False, compare=False)

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


@dataclass(frozen=True)
class MediaSegment:
    """One segment ready for ``SourceBuffer.appendBuffer``."""

    stem: str
    start_s: float
    duration_s: float
    #: What ``SourceBuffer.timestampOffset`` must be while ``data`` is appended.
    timestamp_offset_s: float
    #: A self-contained fragmented MP4 (ftyp, moov, moof/mdat).
    data: bytes = field(repr=False)
    #: The MediaSource type, e.g. ``video/mp4; codecs="avc1.640028,mp4a.40.2"``.
    mime: str


class IncidentMedia:
    """An incident's video segments on one timeline, built from their manifests."""

    def __init__(self, manifests: Sequence[Manifest]):
        video = sorted((m for m in manifests if not m.is_end_marker), key=lambda m: (m.segment_index, m.seq))
        if not video:
            raise MediaError("the incident holds no video segment")
        try:
            check_joinable(video)
        except ExportError as exc:
            raise MediaError(f"the incident cannot play as one stream: {exc}") from None
        self.slots = tuple(Slot(p.stem, p.offset_us / 1e6, p.duration_us / 1e6, m.format, m)
                           for m, p in zip(video, timeline(video)))
        self._by_stem = {s.stem: s for s in self.slots}

    @classmethod
    def from_store(cls, incident_dir: str | Path, stems: Iterable[str] | None = None) -> IncidentMedia:
        """From the manifests in the incident's store directory (``<store>/<Incident.store_path>``); ``stems``
        limits it to those segments (e.g. a ticket's)."""
        folder = Path(incident_dir)
        paths = ([folder / f"{s}{MANIFEST_SUFFIX}" for s in stems] if stems is not None
                 else sorted(folder.glob(f"*{MANIFEST_SUFFIX}")))
        manifests = []
        for path in paths:
            try:
                manifests.append(Manifest.parse(path.read_bytes()))
            except FileNotFoundError:
                raise MediaError(f"{path.name} is not in the store (deleted meanwhile?)") from None
            except (OSError, ManifestError) as exc:
                raise MediaError(f"{path}: {exc}") from None
        return cls(manifests)

    @property
    def duration_s(self) -> float:
        return self.slots[-1].end_s

    @property
    def stems(self) -> list[str]:
        return [s.stem for s in self.slots]

    def slot(self, stem: str) -> Slot:
        try:
            return self._by_stem[stem]
        except KeyError:
            raise MediaError(f"{stem} is not a video segment of this incident") from None

    def slot_at(self, seconds: float) -> Slot:
        """The segment that plays at ``seconds`` (the last one from its start on; the first before 0)."""
        chosen = self.slots[0]
        for s in self.slots:
            if s.start_s <= seconds:
                chosen = s
        return chosen

    def media_segment(self, stem: str, plaintext: bytes | Iterable[bytes]) -> MediaSegment:
        """``stem``'s plaintext (bytes, or the custodian's stream of chunks) as a :class:`MediaSegment`."""
        slot = self.slot(stem)
        data = plaintext if isinstance(plaintext, (bytes, bytearray)) else b"".join(plaintext)
        if len(data) != slot.manifest.plaintext_bytes:
            raise MediaError(f"{stem}: got {len(data)} bytes of plaintext, the manifest says "
                             f"{slot.manifest.plaintext_bytes}")
        if not slot.manifest.has_audio:
            out = io.BytesIO()
            try:
                with Remuxer(out, fragmented=True) as remuxer:
                    remuxer.add(slot.manifest, 0, bytes(data))
            except ExportError as exc:
                raise MediaError(str(exc)) from None
            data = out.getvalue()
        first_picture_s, mime = inspect(bytes(data))
        return MediaSegment(stem, slot.start_s, slot.duration_s, slot.start_s - first_picture_s, bytes(data), mime)


def inspect(mp4: bytes) -> tuple[float, str]:
    """(time of the first picture in ``mp4``, its MediaSource type with the codec strings read from the
    streams' own configuration: ``avc1.PPCCLL`` from the avcC, ``mp4a.40.N`` from the AudioSpecificConfig)."""
    import av

    try:
        with av.open(io.BytesIO(mp4), "r", format="mp4") as container:
            codecs = []
            for stream in container.streams:
                if stream.type == "video":
                    codecs.append(_avc1(bytes(stream.codec_context.extradata or b"")))
                elif stream.type == "audio":
                    codecs.append(_mp4a(bytes(stream.codec_context.extradata or b"")))
            video = container.streams.video[0]
            first = next((p for p in container.demux(video) if p.size), None)
    except (av.FFmpegError, IndexError) as exc:
        raise MediaError(f"the segment is not a playable MP4 ({exc})") from None
    if first is None or first.pts is None:
        raise MediaError("the segment holds no picture")
    return float(first.pts * first.time_base), f'video/mp4; codecs="{",".join(codecs)}"'


def _avc1(extradata: bytes) -> str:
    """``avc1.PPCCLL`` (profile, constraint flags, level) from an avcC record or Annex-B SPS."""
    if len(extradata) >= 4 and extradata[0] == 1:
        profile = extradata[1:4]
    else:
        sps = next((u for u in extradata.split(b"\x00\x00\x01")[1:] if u and u[0] & 0x1F == 7), b"")
        if len(sps) < 4:
            raise MediaError("the picture stream has no H.264 sequence parameter set")
        profile = sps[1:4]
    return "avc1." + profile.hex()


def _mp4a(extradata: bytes) -> str:
    """``mp4a.40.N``, N the AAC audio object type (2: AAC-LC) from the AudioSpecificConfig."""
    if not extradata:
        raise MediaError("the sound stream has no AAC configuration")
    return f"mp4a.40.{extradata[0] >> 3}"
