"""The units that flow from the camera to the spool: an encoded H.264 access unit, an encoded audio packet."""

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


@dataclass(frozen=True, slots=True)
class AudioPacket:
    """One encoded audio frame (raw AAC, no ADTS header), on the same media clock as the pictures.

    ``pts_us`` is the time of its first sample on the source's media clock (the clock of
    :attr:`EncodedFrame.pts_us`), ``duration_us`` how long it plays; packets of one stream follow each
    other without gaps unless some were lost, so ``pts_us + duration_us`` is the next packet's ``pts_us``
    (within a microsecond of rounding). ``seq`` is the source's running packet number; a gap means the
    pipeline dropped packets. Like frames, packets are immutable and never copied.
    """

    data: bytes
    pts_us: int
    duration_us: int
    seq: int

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def end_us(self) -> int:
        return self.pts_us + self.duration_us


@dataclass(frozen=True, slots=True)
class AudioInfo:
    """What a decoder (and later the sealed manifest) needs to know about a source's sound.

    ``config`` is the codec's setup data (for AAC the AudioSpecificConfig), which a container needs
    to describe raw packets.
    """

    codec: str
    sample_rate: int
    channels: int
    bitrate: int
    frame_samples: int
    config: bytes
    source: str

    @classmethod
    def aac_lc(cls, sample_rate: int, channels: int, bitrate: int, source: str) -> "AudioInfo":
        """AAC-LC with 1024 samples per frame; its AudioSpecificConfig is built here (ISO 14496-3 1.6.2.1)."""
        index = _AAC_RATES.index(sample_rate)
        config = ((2 << 11) | (index << 7) | (channels << 3)).to_bytes(2, "big")  # object type 2 = AAC LC
        return cls("aac", sample_rate, channels, bitrate, 1024, config, source)

    @property
    def frame_us(self) -> float:
        """The duration of one audio frame in microseconds (21 333 µs for AAC at 48 kHz)."""
        return self.frame_samples * 1_000_000 / self.sample_rate

    def as_dict(self) -> dict:
        return {
            "codec": self.codec,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "bitrate": self.bitrate,
            "frame_samples": self.frame_samples,
            "config": self.config.hex(),
            "source": self.source,
        }


_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
