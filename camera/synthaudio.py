"""The synthetic camera's sound: silence with a beep on every whole second's frame, encoded to AAC-LC.

The track is rendered in lock-step with the pictures: before a frame is handed over, the samples up
to that frame's presentation time are rendered, and when the frame's burnt-in number is a multiple
of the frame rate, a beep starts at exactly that frame's time. A test can therefore decode a sealed
or exported recording and measure the audio/video offset of every beep against its frame.

Encoded with PyAV's (FFmpeg's native) AAC encoder: mono, 48 kHz, 1024 samples (21.3 ms) per packet,
raw AAC without ADTS headers (the container describes the stream with :attr:`AudioInfo.config`).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from .frames import AudioInfo, AudioPacket
from .pyav import import_av

SAMPLE_RATE = 48_000
BEEP_HZ = 1_000.0
BEEP_SECONDS = 0.1
BEEP_AMPLITUDE = 0.5


def sample_at(pts_us: int, rate: int = SAMPLE_RATE) -> int:
    """The index of the sample at media time ``pts_us`` (sample 0 plays at time 0)."""
    return round(pts_us * rate / 1_000_000)


def time_of(sample: int, rate: int = SAMPLE_RATE) -> int:
    """The media time in microseconds of sample number ``sample``."""
    return round(sample * 1_000_000 / rate)


def describe(bitrate: int, sample_rate: int = SAMPLE_RATE) -> AudioInfo:
    """The track :class:`SyntheticAudio` makes, known without loading PyAV (the encoder may run elsewhere)."""
    return AudioInfo.aac_lc(sample_rate, 1, bitrate, "synthetic")


class SyntheticAudio:
    """Renders and encodes the track up to each frame's time; call :meth:`advance` once per frame.

    Not thread-safe: it lives on the synthetic camera's thread.
    """

    def __init__(self, bitrate: int = 48_000, sample_rate: int = SAMPLE_RATE):
        av = import_av()
        self._av = av
        ctx = av.CodecContext.create("aac", "w")
        ctx.sample_rate = sample_rate
        ctx.layout = "mono"
        ctx.format = "fltp"
        ctx.bit_rate = bitrate
        ctx.time_base = Fraction(1, sample_rate)
        ctx.open()
        self._ctx = ctx
        self.rate = sample_rate
        self.info = describe(bitrate, sample_rate)
        if ctx.frame_size != self.info.frame_samples:
            raise RuntimeError(f"PyAV's AAC encoder takes {ctx.frame_size} samples a frame, not 1024")
        self._pending = np.zeros(0, np.float32)  # rendered, not yet a whole encoder frame
        self._pending_from = 0                    # sample number of _pending[0]
        self._beep_from: int | None = None
        self._beep_samples = round(BEEP_SECONDS * sample_rate)
        self._seq = 0

    def advance(self, pts_us: int, beep: bool) -> list[AudioPacket]:
        """Render up to ``pts_us``; with ``beep`` a beep starts at exactly that time. The packets now ready."""
        until = sample_at(pts_us, self.rate)
        rendered_to = self._pending_from + len(self._pending)
        if until > rendered_to:
            self._pending = np.concatenate([self._pending, self._render(rendered_to, until)])
        if beep:
            self._beep_from = max(until, rendered_to)
        packets = []
        size = self.info.frame_samples
        while len(self._pending) >= size:
            chunk, self._pending = self._pending[:size], self._pending[size:]
            packets += self._encode(chunk, self._pending_from)
            self._pending_from += size
        return packets

    def _render(self, start: int, stop: int) -> np.ndarray:
        out = np.zeros(stop - start, np.float32)
        if self._beep_from is not None:
            lo = max(start, self._beep_from)
            hi = min(stop, self._beep_from + self._beep_samples)
            if hi > lo:
                n = np.arange(lo - self._beep_from, hi - self._beep_from)
                out[lo - start:hi - start] = BEEP_AMPLITUDE * np.sin(2 * math.pi * BEEP_HZ * n / self.rate)
        return out

    def _encode(self, chunk: np.ndarray, first_sample: int) -> list[AudioPacket]:
        frame = self._av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="fltp", layout="mono")
        frame.sample_rate = self.rate
        frame.pts = first_sample
        frame.time_base = Fraction(1, self.rate)
        packets = []
        for packet in self._ctx.encode(frame):
            start = time_of(packet.pts, self.rate)
            packets.append(AudioPacket(bytes(packet), start, time_of(packet.pts + packet.duration, self.rate) - start,
                                       self._seq))
            self._seq += 1
        return packets
