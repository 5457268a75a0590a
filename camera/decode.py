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
