"""The unit that flows from the camera to the spool: one encoded H.264 access unit."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One H.264 access unit in Annex-B byte-stream form, as the encoder produced it.

    Frames are immutable and their ``data`` is never copied on the way from the camera to the
    sealer: the ring, the recorder and the segmenter pass the same object along.

    ``seq`` is the source's running frame number; a gap between two consecutive frames means the
    pipeline dropped frames. ``pts_us`` is the presentation time in microseconds on the source's
    monotonic media clock; ``wall_time`` is the UNIX time at which the frame was captured. A keyframe
    is an IDR picture preceded by SPS and PPS, so decoding may start at it.
    """

    data: bytes
    pts_us: int
    keyframe: bool
    wall_time: float
    seq: int

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What a decoder (and the sealed manifest) needs to know about a source's stream."""

    codec: str
    width: int
    height: int
    fps: float
    bitrate: int
    gop_frames: int
    source: str

    def as_dict(self) -> dict:
        return {
            "codec": self.codec,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "bitrate": self.bitrate,
            "gop_frames": self.gop_frames,
            "source": self.source,
        }
