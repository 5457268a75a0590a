"""The pre-event ring: the last N seconds of encoded video, held in RAM only.

The ring is a deque of GOPs (a keyframe with the frames that depend on it). Trimming always removes
a whole GOP from the head, so whatever the ring holds starts at a keyframe with SPS/PPS and decodes.
Two bounds apply: time (GOPs whose keyframe lies before ``newest - window`` are dropped) and bytes
(under a bitrate spike the oldest GOPs go first; a single GOP larger than the bound is dropped whole
and the ring waits for the next keyframe). Frames are kept by reference; nothing is copied and
nothing is ever written to disk from here.

Sound is held beside the pictures under the same bounds: its bytes count against ``max_bytes``, and
whenever the oldest GOP goes, the packets that start before the new oldest keyframe go with it, but
for one: the packet just before the keyframe's time stays as the decoder's pre-roll (an AAC frame
decodes correctly only after the one before it). Packets that arrive with no picture to belong to
(the ring is empty) are not kept.

Not thread-safe on purpose: the recorder thread owns its ring.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .frames import AudioPacket, EncodedFrame

#: Per-frame bookkeeping beyond the payload (EncodedFrame object, list slot, deque share), counted
#: in :attr:`PreEventRing.memory_bytes` so the reported figure is what the process really holds.
FRAME_OVERHEAD_BYTES = 120


class _Gop:
    __slots__ = ("frames", "nbytes")

    def __init__(self, keyframe: EncodedFrame):
        self.frames = [keyframe]
        self.nbytes = keyframe.size


@dataclass(frozen=True)
class RingStats:
    """An immutable snapshot for the display and telemetry."""

    window_seconds: float
    max_bytes: int
    frames: int
    gops: int
    payload_bytes: int
    memory_bytes: int
    seconds_held: float
    frames_discarded: int
    gops_dropped_for_bytes: int
    audio_packets: int = 0


class PreEventRing:
    """Holds the most recent ``window_seconds`` of video, never more than ``max_bytes``.

    With a window of 0 the ring holds nothing at all: a deployment without pre-recording keeps no
    footage from before the trigger, not even in RAM.
    """

    def __init__(self, window_seconds: float, max_bytes: int):
        if window_seconds < 0 or max_bytes <= 0:
            raise ValueError("window_seconds must be >= 0 and max_bytes > 0")
        self.window_us = round(window_seconds * 1_000_000)
        self.max_bytes = max_bytes
        self._gops: deque[_Gop] = deque()
        self._audio: deque[AudioPacket] = deque()
        self._tail: _Gop | None = None  # the GOP new frames join; None until the next keyframe
        self._bytes = 0
        self._frames = 0
        self.frames_discarded = 0  # frames that arrived with no keyframe to hang on
        self.gops_dropped_for_bytes = 0
        #: True after the ring lost its current GOP (gap or byte bound) until the next keyframe.
        self.wants_keyframe = False

    # -- writing -------------------------------------------------------------------------------------
    def append(self, frame: EncodedFrame) -> None:
        """Add a frame; afterwards :attr:`wants_keyframe` says whether to ask the encoder for one."""
        if self.window_us == 0:
            return
        if frame.keyframe:
            self._tail = _Gop(frame)
            self._gops.append(self._tail)
            self.wants_keyframe = False
        elif self._tail is not None:
            self._tail.frames.append(frame)
            self._tail.nbytes += frame.size
        else:
            self.frames_discarded += 1
            return
        self._bytes += frame.size
        self._frames += 1
        self._enforce_bytes()
        horizon = frame.pts_us - self.window_us
        while self._gops and self._gops[0].frames[0].pts_us < horizon:
            self._drop_head()

    def append_audio(self, packet: AudioPacket) -> None:
        """Add a packet of sound; kept only while a picture at or before its time is held."""
        if not self._gops:
            return
        self._audio.append(packet)
        self._bytes += packet.size
        self._trim_audio()
        self._enforce_bytes()

    def _enforce_bytes(self) -> None:
        while self._bytes > self.max_bytes and self._gops:
            if self._gops[0] is self._tail:
                self.wants_keyframe = True  # one GOP outgrew the bound: restart as soon as possible
            self._drop_head()
            self.gops_dropped_for_bytes += 1

    def mark_gap(self) -> None:
        """Frames were lost upstream: the current GOP cannot be decoded past this point."""
        if self._tail is not None:
            self._tail = None
            self.wants_keyframe = True

    def _drop_head(self) -> None:
        gop = self._gops.popleft()
        self._bytes -= gop.nbytes
        self._frames -= len(gop.frames)
        if gop is self._tail:
            self._tail = None
        self._trim_audio()

    def _trim_audio(self) -> None:
        """Drop sound older than the oldest picture, keeping one packet before it as pre-roll."""
        audio = self._audio
        if not self._gops:
            while audio:
                self._bytes -= audio.popleft().size
            return
        head = self._gops[0].frames[0].pts_us
        while len(audio) >= 2 and audio[1].pts_us < head:
            self._bytes -= audio.popleft().size

    def drain(self) -> tuple[list[EncodedFrame], list[AudioPacket]]:
        """Hand over everything held, oldest first, and empty the ring.

        The frames start at a keyframe; the packets (none for a source without sound) start with at
        most one packet before that keyframe's time (the pre-roll), then from its time on.
        """
        frames = [f for gop in self._gops for f in gop.frames]
        audio = list(self._audio)
        self.clear()
        return frames, audio

    def clear(self) -> None:
        self._gops.clear()
        self._audio.clear()
        self._tail = None
        self._bytes = self._frames = 0

    # -- reading -------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._frames

    @property
    def nbytes(self) -> int:
        return self._bytes

    @property
    def head(self) -> EncodedFrame | None:
        return self._gops[0].frames[0] if self._gops else None

    @property
    def seconds_held(self) -> float:
        if not self._gops:
            return 0.0
        return (self._gops[-1].frames[-1].pts_us - self._gops[0].frames[0].pts_us) / 1e6

    @property
    def memory_bytes(self) -> int:
        return self._bytes + (self._frames + len(self._audio)) * FRAME_OVERHEAD_BYTES

    def stats(self) -> RingStats:
        return RingStats(self.window_us / 1e6, self.max_bytes, self._frames, len(self._gops), self._bytes,
                         self.memory_bytes, self.seconds_held, self.frames_discarded,
                         self.gops_dropped_for_bytes, len(self._audio))
