"""Back office: turn one verified incident into a single MP4 plus a JSON report of what went into it.

The segments are verified first (public keys only), then decrypted in memory with the municipality's
identity and remuxed, not re-encoded, so the MP4 holds the device's own H.264 bytes. Timestamps come
from the signed manifests (per-frame times relative to the segment start, and the segment start on the
device's media clock), so playback timing is the recording's, not a guess from a frame rate.

Segments with sound (format ``bodycam-segment/2``, an MP4 with both tracks) give an MP4 with the
sound as its second track (AAC, as recorded): each sound packet keeps its time relative to its
segment's first picture, the pre-roll packet at the start of each segment (a copy of the previous
segment's last packet, there so that the segment decodes alone) is left out, so no sound is doubled
at a cut. An incident must be of one format throughout.

An incident that a device restart cut off ends in a signed end marker (no video): it exports, and the
report's ``cut`` says when and how much may be missing at its end. An incident with a gap, a bad
signature or a damaged ciphertext is refused; with ``allow_gaps=True`` only
the segments that verified are joined and the report lists what is missing. The report is written
beside the MP4 as ``<name>.report.json``. The MP4 appears under its final name only when complete.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from pyrage import x25519

from base import __version__
from base.errors import BodycamError
from base.utctime import iso_utc
from .keys import DevicePublicKey
from .seal import Manifest, decrypt
from .verify import Report, SegmentResult, parse_time, verify_paths

logger = logging.getLogger(__name__)

REPORT_FORMAT = "bodycam-export-report/1"
_US = Fraction(1, 1_000_000)

#: ``progress(done, total)``: segments joined so far, out of ``total``.
Progress = Callable[[int, int], None]


class ExportError(BodycamError):
    """The export cannot be made (no such incident, unreadable input, undecodable segment)."""


class ExportRefused(ExportError):
    """The incident did not verify completely and gaps were not allowed; ``problems`` says why."""

    def __init__(self, message: str, problems: list[str]):
        super().__init__(message)
        self.problems = problems


@dataclass(frozen=True)
class ExportResult:
    mp4_path: Path
    report_path: Path
    report: dict

    @property
    def complete(self) -> bool:
        return self.report["complete"]


def report_path_for(mp4_path: str | os.PathLike) -> Path:
    """Where the JSON report of an export goes: ``incident.mp4`` → ``incident.report.json``."""
    return Path(mp4_path).with_suffix(".report.json")


def export_incident(paths: Iterable[str | os.PathLike], *, devices: Mapping[str, DevicePublicKey],
                    identities: list[x25519.Identity], out: str | os.PathLike, incident_id: str | None = None,
                    device_id: str | None = None, allow_gaps: bool = False,
                    progress: Progress | None = None) -> ExportResult:
    """Verify the sealed segments under ``paths`` and join one incident into ``out`` (an .mp4 path)."""
    out = Path(out)
    if not out.parent.is_dir():
        raise ExportError(f"{out.parent}: output directory does not exist")
    report = verify_paths(paths, devices)
    (device, incident), segments = _choose(report, incident_id, device_id)
    problems = report.problems_for(device, incident)
    if problems and not allow_gaps:
        raise ExportRefused(f"incident {incident} of device {device} did not verify completely; "
                            "not exporting (use --allow-gaps to export the verified parts)", problems)
    usable = _usable(segments)
    if not usable:
        raise ExportRefused(f"incident {incident} of device {device} has no segment that verified", problems)
    check_joinable([s.manifest for s in usable])

    tmp = out.with_name(f".{out.name}.part")
    try:
        placed = remux([s.manifest for s in usable], (_open_segment(s, identities) for s in usable), tmp,
                       progress=progress)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with open(out, "rb") as fh:
        mp4_sha256 = hashlib.file_digest(fh, "sha256").hexdigest()
    placed_rows = [{"stem": p.stem, "offset_s": round(p.offset_us / 1e6, 6), "end_s": round(p.end_us / 1e6, 6)}
                   for p in placed]
    doc = _report(report, device, incident, segments, usable, placed_rows, problems, allow_gaps, out, mp4_sha256)
    report_path = report_path_for(out)
    report_path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    logger.info("exported incident %s of %s: %d segment(s) to %s", incident, device, len(usable), out)
    return ExportResult(out, report_path, doc)


def _choose(report: Report, incident_id, device_id) -> tuple[tuple[str, str], list[SegmentResult]]:
    groups = {k: v for k, v in report.incidents().items()
              if (incident_id is None or k[1] == incident_id) and (device_id is None or k[0] == device_id)}
    claimed = [s for s in report.segments if s.manifest is not None and (incident_id is None or
               s.manifest.incident_id == incident_id) and (device_id is None or s.manifest.device_id == device_id)]
    if not groups and (not report.trusted() or claimed):  # there is something to export, and none of it verified
        raise ExportRefused("no segment in the given paths verified; nothing to export",
                            [line for s in (claimed or report.segments) for line in
                             (f"{s.stem}: {p}" for p in s.problems)])
    if not groups:
        what = " ".join(x for x in (f"incident {incident_id}" if incident_id else "",
                                    f"device {device_id}" if device_id else "") if x) or "any incident"
        raise ExportError(f"no verified segments of {what} found in the given paths")
    if len(groups) > 1:
        listed = ", ".join(f"{i} (device {d})" for d, i in sorted(groups))
        raise ExportError(f"the paths hold several incidents; choose one with --incident/--device: {listed}")
    return next(iter(groups.items()))


def _usable(segments: list[SegmentResult]) -> list[SegmentResult]:
    """Verified segments with intact ciphertext, one per index, in index order."""
    chosen: dict[int, SegmentResult] = {}
    for s in segments:
        if s.ok and not s.manifest.is_end_marker and s.manifest.segment_index not in chosen:
            chosen[s.manifest.segment_index] = s
    return [chosen[i] for i in sorted(chosen)]


def check_joinable(manifests: Sequence[Manifest]) -> None:
    """Refuse segments that cannot become one MP4 track: another picture size, not H.264, sound in some only."""
    first = manifests[0].codec
    for s in manifests[1:]:
        c = s.codec
        if (c.get("codec"), c.get("width"), c.get("height")) != (first.get("codec"), first.get("width"),
                                                                  first.get("height")):
            raise ExportError(f"{s.stem}: the video format changes inside the incident "
                              f"({first.get('width')}x{first.get('height')} → {c.get('width')}x{c.get('height')}); "
                              "cannot join into one MP4 track")
    if str(first.get("codec")).lower() not in ("h264", "avc", "avc1"):
        raise ExportError(f"codec {first.get('codec')!r} is not H.264; only H.264 segments can be exported")
    sound = {s.has_audio for s in manifests}
    if len(sound) > 1:
        raise ExportError("the incident has segments with and without sound; cannot join them into one MP4")
    if True in sound:
        formats = {(s.audio["codec"], s.audio["sample_rate"], s.audio["channels"]) for s in manifests}
        if len(formats) > 1 or next(iter(formats))[0] != "aac":
            raise ExportError(f"the sound format changes inside the incident or is not AAC ({sorted(formats)}); "
                              "cannot join into one MP4 track")


@dataclass(frozen=True)
class Placement:
    """Where one segment sits in its incident's MP4: its first picture at ``offset_us``, its end at
    ``end_us`` (after its last picture's duration), on the incident's timeline (0 = the first picture)."""

    stem: str
    offset_us: int
    end_us: int

    @property
    def duration_us(self) -> int:
        return self.end_us - self.offset_us


def timeline(manifests: Sequence[Manifest]) -> list[Placement]:
    """The incident's timeline from its signed manifests alone (no plaintext needed): each segment starts at
    its media-clock time after the first one's; when the media clock restarted inside the incident (a reboot),
    at its wall-clock time, and never before the previous segment's end."""
    out: list[Placement] = []
    if not manifests:
        return out
    base_pts = manifests[0].start_pts_us
    base_wall = parse_time(manifests[0].start_time)
    prev_end = 0
    for m in manifests:
        offset = m.start_pts_us - base_pts
        if offset < prev_end:  # media clock restarted (reboot inside an incident): fall back to wall clock
            offset = max(prev_end, round((parse_time(m.start_time) - base_wall) * 1e6))
        end = offset + max(m.frame_pts_us) + _frame_us(m)
        out.append(Placement(m.stem, offset, end))
        prev_end = end
    return out


def _frame_us(m: Manifest) -> int:
    return round(1_000_000 / float(m.codec["fps"]))


def remux(manifests: Sequence[Manifest], plaintexts: Iterable[bytes], out, *, fragmented: bool = False,
          progress: Progress | None = None) -> list[Placement]:
    """Copy the access units (and sound) of an incident's segments into one MP4 with the signed times.

    ``plaintexts`` yields each segment's decrypted bytes in the order of ``manifests`` (a generator, so only
    one segment is held at a time); ``out`` as for :class:`Remuxer`.
    """
    placements = timeline(manifests)
    total = len(manifests)
    if progress:
        progress(0, total)
    done = 0
    with Remuxer(out, fragmented=fragmented) as remuxer:
        for m, place, plaintext in zip(manifests, placements, plaintexts):
            remuxer.add(m, place.offset_us, plaintext)
            del plaintext
            done += 1
            if progress:
                progress(done, total)
    if done != total:
        raise ExportError(f"{total - done} of {total} segment(s) could not be read; the MP4 is incomplete")
    return placements


class Remuxer:
    """One MP4 written a segment at a time (:meth:`add`), so a caller can pass on what was written in between.

    ``out`` is a path or a writable file object. ``fragmented`` writes a fragmented MP4 (a ``moof`` per
    keyframe) that needs no seeking: for a stream that cannot seek (a ZIP entry, an HTTP response) and for
    Media Source Extensions. Picture and sound keep the signed times, except that a fragmented MP4 starts
    each track at 0: its first sound packet (up to one packet, about 21 ms, after the first picture) is
    stretched back to the first picture.
    """

    def __init__(self, out, *, fragmented: bool = False):
        import av  # back office only: the device never needs PyAV for sealing

        options = {"movflags": "frag_keyframe+empty_moov+default_base_moof"} if fragmented else {}
        target = str(out) if isinstance(out, (str, os.PathLike)) else out
        self._container = av.open(target, "w", format="mp4", options=options)
        self._streams: list = []

    def add(self, manifest: Manifest, offset_us: int, plaintext: bytes) -> None:
        """Mux one segment, its first picture at ``offset_us`` (from :func:`timeline`)."""
        _mux_segment(manifest, offset_us, plaintext, self._container, self._streams)

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> Remuxer:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.close()
            return
        try:  # already failing: the half-written MP4 is discarded by the caller, its trailer does not matter
            self.close()
        except Exception as exc:  # noqa: BLE001 - the first error is the one to report
            logger.debug("closing an MP4 after an error failed too: %s", exc)


def _mux_segment(m: Manifest, offset: int, plaintext: bytes, container, streams: list) -> None:
    """One segment's pictures (and sound) into ``container``; ``streams`` holds its output streams, made from
    the first segment's."""
    import av

    pts = [offset + p for p in m.frame_pts_us]
    frame_us = _frame_us(m)
    with av.open(io.BytesIO(plaintext), "r", format="mp4" if m.has_audio else "h264") as source:
        src = source.streams.video[0]
        asrc = source.streams.audio[0] if m.has_audio and source.streams.audio else None
        if m.has_audio and asrc is None:
            raise ExportError(f"{m.stem}: the decrypted MP4 has no sound track, the manifest says it has")
        if not streams:
            stream = container.add_stream_from_template(src)
            stream.time_base = Fraction(1, 90_000)
            streams.append(stream)
            if asrc is not None:
                sound = container.add_stream_from_template(asrc)
                sound.time_base = Fraction(1, m.audio["sample_rate"])
                streams.append(sound)
        stream = streams[0]
        sound = streams[1] if len(streams) > 1 else None
        demuxed = list(source.demux(src) if asrc is None else source.demux(src, asrc))
        packets = [p for p in demuxed if p.size and p.stream.type == "video"]
        audio_packets = [p for p in demuxed if p.size and p.stream.type == "audio"]
        if len(packets) != m.frame_count:
            raise ExportError(f"{m.stem}: the decrypted stream holds {len(packets)} frames, the manifest "
                              f"says {m.frame_count}; the segment cannot be timed correctly")
        dts = _decode_times(pts)
        if asrc is not None:  # where the segment's MP4 shows its first picture, before retiming
            picture_us = packets[0].pts * packets[0].time_base * 1_000_000
        for i, packet in enumerate(packets):
            packet.stream = stream
            packet.time_base = _US
            packet.pts = pts[i]
            packet.dts = dts[i]
            packet.duration = (pts[i + 1] - pts[i]) if i + 1 < len(pts) and pts[i + 1] > pts[i] else frame_us
            container.mux(packet)
        if asrc is not None:
            _mux_sound(m, audio_packets, picture_us, offset, sound, container)


def _mux_sound(m: Manifest, packets: list, picture_us, offset: int, sound, container) -> None:
    """Copy a segment's sound packets (without the pre-roll) at their times relative to its first picture,
    which the segment's MP4 shows at ``picture_us``."""
    if m.audio_preroll:
        packets = packets[1:]
    if len(packets) != m.audio_packets:
        raise ExportError(f"{m.stem}: the decrypted MP4 holds {len(packets)} sound packets, the manifest "
                          f"says {m.audio_packets}")
    rate = m.audio["sample_rate"]
    for packet in packets:
        at_us = packet.pts * packet.time_base * 1_000_000 - picture_us  # relative to the segment's start
        duration = packet.duration
        packet.stream = sound
        packet.time_base = Fraction(1, rate)
        packet.pts = packet.dts = round((offset + at_us) * rate / 1_000_000)
        packet.duration = duration
        container.mux(packet)


def _open_segment(seg: SegmentResult, identities) -> bytes:
    """Read, re-hash and decrypt; the hash is checked again on the very bytes decrypted (the file may have
    changed since verification)."""
    try:
        ciphertext = seg.ciphertext_path.read_bytes()
    except OSError as exc:
        raise ExportError(f"{seg.ciphertext_path}: cannot read ({exc.strerror})") from None
    if hashlib.sha256(ciphertext).hexdigest() != seg.manifest.ciphertext_sha256:
        raise ExportError(f"{seg.stem}: the .age file changed after verification; start the export again")
    plaintext = decrypt(ciphertext, identities)
    if len(plaintext) != seg.manifest.plaintext_bytes:
        raise ExportError(f"{seg.stem}: decrypted {len(plaintext)} bytes, the manifest says "
                          f"{seg.manifest.plaintext_bytes}")
    return plaintext


def _decode_times(pts: list[int]) -> list[int]:
    """Monotonic decode times with dts <= pts for every frame (equal to pts when there are no B-frames)."""
    ordered = sorted(pts)
    shift = max(o - p for o, p in zip(ordered, pts))
    return [o - shift for o in ordered]


def _report(report: Report, device, incident, segments, usable, timeline, problems, allow_gaps, out,
            mp4_sha256) -> dict:
    used = {s.stem for s in usable}
    placed = {t["stem"]: t for t in timeline}
    rows = []
    for s in segments:
        m: Manifest = s.manifest
        row = {"stem": s.stem, "kind": "incident_end" if m.is_end_marker else "segment",
               "seq": m.seq, "segment_index": m.segment_index, "final": m.final,
               "included": s.stem in used, "start_time": m.start_time, "end_time": m.end_time,
               "clock_sync": m.clock_sync, "frame_count": m.frame_count, "dropped_frames": m.dropped_frames,
               "pre_event_frames": m.pre_event_frames, "pre_event_mode": m.pre_event_mode,
               "plaintext_bytes": m.plaintext_bytes,
               "manifest_sha256": m.sha256, "ciphertext_sha256": m.ciphertext_sha256,
               "signing_key_id": m.signing_key_id, "software_version": m.software_version, "officer": m.officer}
        if s.stem in placed:
            row.update(offset_s=placed[s.stem]["offset_s"], end_s=placed[s.stem]["end_s"])
        if s.problems:
            row["problems"] = list(s.problems)
        rows.append(row)
    gaps = []
    for a, b in zip(usable, usable[1:]):
        missing = b.manifest.segment_index - a.manifest.segment_index - 1
        seconds = parse_time(b.manifest.start_time) - parse_time(a.manifest.end_time)
        if missing or b.manifest.seq != a.manifest.seq + 1:
            gaps.append({"after": a.stem, "before": b.stem, "missing_segments": missing,
                         "missing_seq": b.manifest.seq - a.manifest.seq - 1, "wall_clock_gap_s": round(seconds, 3)})
    first, last = usable[0].manifest, usable[-1].manifest
    cut = report.cut_of(device, incident)
    return {
        "format": REPORT_FORMAT,
        "created": iso_utc(time.time(), millis=False),
        "software_version": __version__,
        "device_id": device, "site": first.site, "incident_id": incident,
        "officers": sorted({s.manifest.officer for s in usable if s.manifest.officer}),
        "complete": not problems,
        "allow_gaps": allow_gaps,
        "problems": problems,
        "gaps": gaps,
        "cut": cut.to_dict() if cut else None,
        "start_time": first.start_time, "end_time": last.end_time,
        "frames": sum(s.manifest.frame_count for s in usable),
        "duration_s": timeline[-1]["end_s"] if timeline else 0.0,
        "mp4": {"path": out.name, "sha256": mp4_sha256, "bytes": out.stat().st_size},
        "segments": rows,
        "verification_notes": list(report.notes),
    }
