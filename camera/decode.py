"""Decode H.264 back to pictures with PyAV: proof that a segment plays on its own.

Used by the demo, the tests and ``bodycam doctor`` to check the encoder; not on the capture path.
"""

from __future__ import annotations

from .synthetic import _import_av, read_counter


def decode_luma(payload: bytes):
    """Yield the luma plane (numpy uint8, 2-D) of every picture in an Annex-B H.264 stream."""
    av = _import_av()
    codec = av.CodecContext.create("h264", "r")
    for packet in codec.parse(payload) + codec.parse(b""):
        for frame in codec.decode(packet):
            yield frame.to_ndarray(format="gray")
    for frame in codec.decode(None):
        yield frame.to_ndarray(format="gray")


def decode_frame_numbers(payload: bytes) -> list[int | None]:
    """The synthetic camera's burnt-in frame number of each decoded picture (None where unreadable)."""
    return [read_counter(luma) for luma in decode_luma(payload)]


def decode_mp4_frame_numbers(path) -> list[int | None]:
    """The burnt-in frame numbers of every picture in an exported MP4 (the whole back-office chain)."""
    av = _import_av()
    with av.open(str(path)) as container:
        return [read_counter(frame.to_ndarray(format="gray")) for frame in container.decode(video=0)]


def decode_audio(packets, info, preroll=None):
    """Decode AAC packets (in order) onto the media clock: (mono float32 samples, time of the first in µs).

    Each packet is decoded at its own ``pts_us``; a hole between packets stays silent, so times read
    from the result are the times the recording claims. ``preroll`` (a segment's ``audio_preroll``)
    is decoded first and its output discarded, so the first packet decodes as in the whole stream.
    """
    import numpy as np
    from fractions import Fraction

    av = _import_av()
    packets = list(packets)
    if not packets:
        return np.zeros(0, np.float32), 0
    codec = av.CodecContext.create(info.codec, "r")
    codec.sample_rate, codec.layout = info.sample_rate, "mono" if info.channels == 1 else "stereo"
    codec.extradata = info.config
    rate = info.sample_rate
    start_us = packets[0].pts_us
    end = round((packets[-1].end_us - start_us) * rate / 1_000_000)
    out = np.zeros(end, np.float32)
    if preroll is not None:
        codec.decode(av.Packet(preroll.data))
    for p in packets:
        av_packet = av.Packet(p.data)
        av_packet.pts = round(p.pts_us * rate / 1_000_000)
        av_packet.time_base = Fraction(1, rate)
        for frame in codec.decode(av_packet):
            samples = frame.to_ndarray()[0]
            at = round((p.pts_us - start_us) * rate / 1_000_000)
            take = samples[: max(0, min(len(samples), end - at))]
            out[at:at + len(take)] = take
    return out, start_us


def beep_onsets(samples, start_us: int, rate: int, threshold: float = 0.1, quiet_s: float = 0.2) -> list[int]:
    """Media times (µs) where sound starts after at least ``quiet_s`` of silence: the synthetic beeps."""
    import numpy as np

    loud = np.flatnonzero(np.abs(samples) > threshold)
    if loud.size == 0:
        return []
    quiet = round(quiet_s * rate)
    starts = [loud[0]] + [b for a, b in zip(loud[:-1], loud[1:]) if b - a > quiet]
    return [start_us + round(int(i) * 1_000_000 / rate) for i in starts]
