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
from typing import Callable, Iterable, Mapping

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
    _check_codec(usable)

    tmp = out.with_name(f".{out.name}.part")
    try:
        timeline = _remux(usable, identities, tmp, progress)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with open(out, "rb") as fh:
        mp4_sha256 = hashlib.file_digest(fh, "sha256").hexdigest()
    doc = _report(report, device, incident, segments, usable, timeline, problems, allow_gaps, out, mp4_sha256)
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


def _check_codec(segments: list[SegmentResult]) -> None:
    first = segments[0].manifest.codec
    for s in segments[1:]:
        c = s.manifest.codec
        if (c.get("codec"), c.get("width"), c.get("height")) != (first.get("codec"), first.get("width"),
                                                                  first.get("height")):
            raise ExportError(f"{s.stem}: the video format changes inside the incident "
                              f"({first.get('width')}x{first.get('height')} → {c.get('width')}x{c.get('height')}); "
                              "cannot join into one MP4 track")
    if str(first.get("codec")).lower() not in ("h264", "avc", "avc1"):
        raise ExportError(f"codec {first.get('codec')!r} is not H.264; only H.264 segments can be exported")
    sound = {s.manifest.has_audio for s in segments}
    if len(sound) > 1:
        raise ExportError("the incident has segments with and without sound; cannot join them into one MP4")
    if True in sound:
        formats = {(s.manifest.audio["codec"], s.manifest.audio["sample_rate"], s.manifest.audio["channels"])
                   for s in segments}
        if len(formats) > 1 or next(iter(formats))[0] != "aac":
            raise ExportError(f"the sound format changes inside the incident or is not AAC ({sorted(formats)}); "
                              "cannot join into one MP4 track")


def _remux(segments: list[SegmentResult], identities, path: Path, progress: Progress | None) -> list[dict]:
    """Decrypt each segment in memory and copy its access units into one MP4 track with the signed times."""
    import av  # back office only: the device never needs PyAV for sealing

    timeline: list[dict] = []
    base_pts = segments[0].manifest.start_pts_us
    base_wall = parse_time(segments[0].manifest.start_time)
    prev_end = 0
    total = len(segments)
    if progress:
        progress(0, total)
    with av.open(str(path), "w", format="mp4") as container:
        stream = sound = None
        for done, seg in enumerate(segments, 1):
            m = seg.manifest
            plaintext = _open_segment(seg, identities)
            offset = m.start_pts_us - base_pts
            if offset < prev_end:  # media clock restarted (reboot inside an incident): fall back to wall clock
                offset = max(prev_end, round((parse_time(m.start_time) - base_wall) * 1e6))
            pts = [offset + p for p in m.frame_pts_us]
            frame_us = round(1_000_000 / float(m.codec["fps"]))
            with av.open(io.BytesIO(plaintext), "r", format="mp4" if m.has_audio else "h264") as source:
                src = source.streams.video[0]
                asrc = source.streams.audio[0] if m.has_audio and source.streams.audio else None
                if m.has_audio and asrc is None:
                    raise ExportError(f"{seg.stem}: the decrypted MP4 has no sound track, the manifest says it has")
                if stream is None:
                    stream = container.add_stream_from_template(src)
                    stream.time_base = Fraction(1, 90_000)
                    if asrc is not None:
                        sound = container.add_stream_from_template(asrc)
                        sound.time_base = Fraction(1, m.audio["sample_rate"])
                demuxed = list(source.demux(src) if asrc is None else source.demux(src, asrc))
                packets = [p for p in demuxed if p.size and p.stream.type == "video"]
                audio_packets = [p for p in demuxed if p.size and p.stream.type == "audio"]
                if len(packets) != m.frame_count:
                    raise ExportError(f"{seg.stem}: the decrypted stream holds {len(packets)} frames, the manifest "
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
                    _mux_sound(seg, audio_packets, picture_us, offset, sound, container)
            del plaintext
            end = max(pts) + frame_us
            timeline.append({"stem": seg.stem, "offset_s": round(offset / 1e6, 6), "end_s": round(end / 1e6, 6)})
            prev_end = end
            if progress:
                progress(done, total)
    return timeline


def _mux_sound(seg: SegmentResult, packets: list, picture_us, offset: int, sound, container) -> None:
    """Copy a segment's sound packets (without the pre-roll) at their times relative to its first picture,
    which the segment's MP4 shows at ``picture_us``."""
    m = seg.manifest
    if m.audio_preroll:
        packets = packets[1:]
    if len(packets) != m.audio_packets:
        raise ExportError(f"{seg.stem}: the decrypted MP4 holds {len(packets)} sound packets, the manifest "
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
               "signing_key_id": m.signing_key_id, "software_version": m.software_version}
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
