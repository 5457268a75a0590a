"""The plaintext of a segment with sound: one fragmented MP4 (ISO BMFF) with an H.264 and an AAC track.

Why fragmented MP4 and not MPEG-TS: MP4 carries the samples as they are, with their sizes and times
in one small table in front (``moof``), so the sealer streams the camera's own buffers straight into
the cipher (no copy of the segment, about 1 KB of boxes per second of video); MPEG-TS would cut
every frame into 188-byte packets with a header each (about 2 % more bytes, and a Python loop over
some 7,000 packets per second of 1080p video on the Pi). A fragmented MP4 is read by stock
``ffprobe``/``ffmpeg``, VLC and browsers alike, and its ``moof`` can be written before the samples
because a segment is complete when it is sealed.

Layout: ``ftyp``, ``moov`` (track 1 H.264 ``avc1``/``avcC`` at 90 kHz, track 2 AAC ``mp4a``/``esds``
at the sample rate, ``mvex``), one ``moof`` (a ``trun`` per track: each sample's duration, size and
key flag) and one ``mdat`` (the pictures, then the sound). H.264 is stored length-prefixed: each
Annex-B start code becomes a 4-byte NAL length, the NAL bytes themselves are not copied. Both tracks
count from one zero, the earliest sample of the segment, so the file plays in sync on its own. The
first audio sample is the segment's pre-roll packet when it has one (the last packet of the segment
before, at most one audio frame): an AAC frame decodes correctly only after the one before it.

Times inside are what the manifest signs: a picture's decode time is its ``pts_us``; a sound sample
lasts until the next one starts, so a hole left by lost packets keeps the later packets at their
true time.
"""

from __future__ import annotations

import struct
from typing import Iterator, Sequence

VIDEO_TIMESCALE = 90_000
VIDEO_TRACK = 1
AUDIO_TRACK = 2
_KEY = 0x02000000       # sample_depends_on = 2 (an I picture)
_NOT_KEY = 0x01010000   # depends on others, not a sync sample


def _box(kind: bytes, *parts: bytes) -> bytes:
    payload = b"".join(parts)
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def _full(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *parts)


_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def nal_units(access_unit: bytes) -> list[memoryview]:
    """The NAL units of one Annex-B access unit (start codes 00 00 01 or 00 00 00 01), as views."""
    view = memoryview(access_unit)
    find = access_unit.find
    starts = []
    i = find(b"\x00\x00\x01")
    while i != -1:
        starts.append(i + 3)
        i = find(b"\x00\x00\x01", i + 3)
    units = []
    for n, start in enumerate(starts):
        end = starts[n + 1] - 3 if n + 1 < len(starts) else len(access_unit)
        if n + 1 < len(starts) and access_unit[end - 1] == 0:
            end -= 1  # the zero byte of a 4-byte start code belongs to the next unit
        units.append(view[start:end])
    return units


def _avcc(sps: bytes, pps: bytes) -> bytes:
    body = bytes([1, sps[1], sps[2], sps[3], 0xFF, 0xE1]) + struct.pack(">H", len(sps)) + sps + \
        bytes([1]) + struct.pack(">H", len(pps)) + pps
    if sps[1] in (100, 110, 122, 144):  # High profiles: chroma 4:2:0, 8 bit, no SPS extensions
        body += bytes([0xFD, 0xF8, 0xF8, 0])
    return _box(b"avcC", body)


def _descriptor(tag: int, body: bytes) -> bytes:
    return bytes([tag, 0x80, 0x80, 0x80, len(body)]) + body


def _esds(config: bytes, bitrate: int) -> bytes:
    decoder_specific = _descriptor(5, config)
    decoder_config = _descriptor(4, bytes([0x40, 0x15]) + b"\x00\x00\x00" + struct.pack(">II", bitrate, bitrate)
                                 + decoder_specific)
    es = _descriptor(3, struct.pack(">HB", AUDIO_TRACK, 0) + decoder_config + _descriptor(6, b"\x02"))
    return _full(b"esds", 0, 0, es)


def _track(track_id: int, handler: bytes, name: bytes, timescale: int, media_header: bytes, entry: bytes,
           width: int = 0, height: int = 0, volume: int = 0) -> bytes:
    tkhd = _full(b"tkhd", 0, 3, struct.pack(">IIIII", 0, 0, track_id, 0, 0), bytes(8),
                 struct.pack(">hhhH", 0, 0, volume, 0), _MATRIX, struct.pack(">II", width << 16, height << 16))
    mdhd = _full(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, timescale, 0, 0x55C4, 0))  # language "und"
    hdlr = _full(b"hdlr", 0, 0, struct.pack(">I4s", 0, handler), bytes(12), name + b"\x00")
    dinf = _box(b"dinf", _full(b"dref", 0, 0, struct.pack(">I", 1), _full(b"url ", 0, 1)))
    stbl = _box(b"stbl", _full(b"stsd", 0, 0, struct.pack(">I", 1), entry),
                _full(b"stts", 0, 0, bytes(4)), _full(b"stsc", 0, 0, bytes(4)),
                _full(b"stsz", 0, 0, bytes(8)), _full(b"stco", 0, 0, bytes(4)))
    return _box(b"trak", tkhd, _box(b"mdia", mdhd, hdlr, _box(b"minf", media_header, dinf, stbl)))


def _trex(track_id: int) -> bytes:
    return _full(b"trex", 0, 0, struct.pack(">IIIII", track_id, 1, 0, 0, 0))


def _traf(track_id: int, base_time: int, data_offset: int, samples: Sequence[tuple]) -> bytes:
    """``samples``: (duration, size) or (duration, size, flags) per sample."""
    with_flags = len(samples[0]) == 3
    flags = 0x000001 | 0x000100 | 0x000200 | (0x000400 if with_flags else 0)
    rows = b"".join(struct.pack(">III" if with_flags else ">II", *s) for s in samples)
    return _box(b"traf", _full(b"tfhd", 0, 0x020000, struct.pack(">I", track_id)),
                _full(b"tfdt", 1, 0, struct.pack(">Q", base_time)),
                _full(b"trun", 0, flags, struct.pack(">Ii", len(samples), data_offset), rows))


def _ticks(us: int, timescale: int) -> int:
    return round(us * timescale / 1_000_000)


def segment_parts(frames: Sequence, stream: dict, audio: Sequence, audio_preroll, audio_stream: dict
                  ) -> tuple[int, Iterator[bytes | memoryview]]:
    """The MP4 of one segment: (its size in bytes, its parts in order).

    ``frames`` are Annex-B access units with ``data`` and ``pts_us`` (the first one an IDR with SPS
    and PPS); ``audio`` packets have ``data``, ``pts_us`` and ``duration_us``; ``stream`` and
    ``audio_stream`` are the dicts the manifest signs. The frames' bytes are yielded as views, not copied.
    """
    sound = ([audio_preroll] if audio_preroll is not None else []) + list(audio)
    units = [nal_units(f.data) for f in frames]
    first = {u[0] & 0x1F: bytes(u) for u in units[0]}
    if 7 not in first or 8 not in first:
        raise ValueError("a segment's first frame must carry SPS and PPS")
    width, height = int(stream["width"]), int(stream["height"])
    rate = int(audio_stream["sample_rate"])
    zero = min([frames[0].pts_us] + [p.pts_us for p in sound[:1]])

    avc1 = _box(b"avc1", bytes(6), struct.pack(">H", 1), bytes(16), struct.pack(">HH", width, height),
                struct.pack(">II", 0x480000, 0x480000), bytes(4), struct.pack(">H", 1), bytes(32),
                struct.pack(">Hh", 0x18, -1), _avcc(first[7], first[8]))
    mp4a = _box(b"mp4a", bytes(6), struct.pack(">H", 1), bytes(8),
                struct.pack(">HHHHI", int(audio_stream["channels"]), 16, 0, 0, rate << 16),
                _esds(bytes.fromhex(audio_stream["config"]), int(audio_stream["bitrate"])))
    moov = _box(b"moov",
                _full(b"mvhd", 0, 0, struct.pack(">IIIIIH", 0, 0, 1000, 0, 0x10000, 0x100), bytes(10), _MATRIX,
                      bytes(24), struct.pack(">I", 3)),
                _track(VIDEO_TRACK, b"vide", b"bodycam video", VIDEO_TIMESCALE, _full(b"vmhd", 0, 1, bytes(8)),
                       avc1, width, height),
                _track(AUDIO_TRACK, b"soun", b"bodycam sound", rate, _full(b"smhd", 0, 0, bytes(4)), mp4a,
                       volume=0x100),
                _box(b"mvex", _trex(VIDEO_TRACK), _trex(AUDIO_TRACK)))
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isomiso6mp41avc1")

    frame_us = round(1_000_000 / float(stream["fps"]))
    video_times = [_ticks(f.pts_us - zero, VIDEO_TIMESCALE) for f in frames]
    video_ends = video_times[1:] + [video_times[-1] + _ticks(frame_us, VIDEO_TIMESCALE)]
    video_samples = [(end - start, sum(4 + len(u) for u in us), _KEY if f.keyframe else _NOT_KEY)
                     for f, us, start, end in zip(frames, units, video_times, video_ends)]
    audio_times = [_ticks(p.pts_us - zero, rate) for p in sound]
    audio_ends = audio_times[1:] + ([audio_times[-1] + _ticks(sound[-1].duration_us, rate)] if sound else [])
    audio_samples = [(end - start, len(p.data)) for p, start, end in zip(sound, audio_times, audio_ends)]
    video_bytes = sum(s[1] for s in video_samples)
    audio_bytes = sum(s[1] for s in audio_samples)

    def moof(video_offset: int, audio_offset: int) -> bytes:
        trafs = [_traf(VIDEO_TRACK, video_times[0], video_offset, video_samples)]
        if audio_samples:
            trafs.append(_traf(AUDIO_TRACK, audio_times[0], audio_offset, audio_samples))
        return _box(b"moof", _full(b"mfhd", 0, 0, struct.pack(">I", 1)), *trafs)

    moof_size = len(moof(0, 0))
    moof_box = moof(moof_size + 8, moof_size + 8 + video_bytes)
    mdat_header = struct.pack(">I4s", 8 + video_bytes + audio_bytes, b"mdat")
    total = len(ftyp) + len(moov) + len(moof_box) + len(mdat_header) + video_bytes + audio_bytes

    def parts() -> Iterator[bytes | memoryview]:
        yield ftyp + moov + moof_box + mdat_header
        for us in units:
            for u in us:
                yield struct.pack(">I", len(u))
                yield u
        for p in sound:
            yield p.data

    return total, parts()
