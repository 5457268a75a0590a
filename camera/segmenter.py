"""Cuts one recording into segments at keyframes, every ``segment_seconds``, each with the sound of its span.

Each segment starts at an IDR frame with SPS/PPS, so it decodes on its own; consecutive segments
share no frame and miss none. When frames were lost upstream, the current segment is closed at the
gap and the next one starts at the next keyframe, with the loss written into that segment: the
evidence then says exactly where something is missing instead of carrying undecodable frames. A
segment closed at a gap is held back until the next one starts, because only then is it known
whether it was the incident's final one.

Sound is assigned by time, not by arrival: a segment's span starts where the previous one's ended
(the first one at its first picture) and ends at the next segment's first picture (at its own last
picture's end when it is the final one or closed at a gap), and it takes the packets that start
inside its span. Audio encoders deliver later than the picture (AAC holds a frame or two), so a
closed segment waits until packets past its span's end have arrived, or until the pictures have run
``AUDIO_WAIT_US`` further (a silent or unplugged microphone must not hold the evidence back), and
segments always leave in order.

Each segment also names its pre-roll: the packet just before its span (the previous segment's last,
or for the first segment the one before its first picture), because an AAC frame overlaps the one
before it and decodes correctly only after it. A segment decoded alone starts its sound with the
pre-roll and discards what that yields; without it, the first 21 ms fade in and a beep at a cut
measured up to 22 ms late.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import deque
from typing import Callable

from .frames import AudioInfo, AudioPacket, EncodedFrame, StreamInfo
from .segment import Segment

logger = logging.getLogger(__name__)

SegmentSink = Callable[[Segment], None]

#: How far the pictures may run past a closed segment's end before it leaves without the sound still due.
AUDIO_WAIT_US = 1_000_000


class _Closing:
    """A closed segment collecting the sound that may still arrive for its span."""

    __slots__ = ("segment", "audio", "preroll", "from_us", "until_us", "decided")

    def __init__(self, segment: Segment, audio: list[AudioPacket], preroll: AudioPacket | None, from_us: int,
                 until_us: int, decided: bool):
        self.segment, self.audio, self.preroll, self.from_us, self.until_us, self.decided = \
            segment, audio, preroll, from_us, until_us, decided

    def finish(self, info: AudioInfo | None) -> Segment:
        if info is None:
            return self.segment
        return dataclasses.replace(
            self.segment, audio=tuple(self.audio), audio_preroll=self.preroll, audio_stream=info, audio_from_us=self.from_us,
            audio_until_us=self.until_us, audio_missing_us=missing_us(self.audio, self.from_us, self.until_us,
                                                                     info.frame_us))


def missing_us(audio, from_us: int, until_us: int, frame_us: float) -> int:
    """Sound that should lie in ``[from_us, until_us)`` but is not in ``audio``, in microseconds.

    A span need not start or end on a packet boundary (the packet across a cut belongs to the segment
    it starts in), so up to one audio frame at either edge is not missing; inside, any hole of half a
    frame or more is.
    """
    missing, at = 0, from_us
    for packet in audio:
        hole = packet.pts_us - at
        if hole >= (frame_us if at == from_us else frame_us / 2):
            missing += hole
        at = packet.end_us
    if until_us - at > frame_us:
        missing += until_us - at
    return round(missing)


class Segmenter:
    """Collects the frames (and packets) of one incident and hands finished segments to ``sink``.

    Not thread-safe: it lives on the recorder thread. ``sink`` may block (back-pressure from the
    sealer); the capture thread is decoupled from that by the recorder's frame queue. With ``audio``
    None (a source without sound) segments leave as soon as they are closed and carry no sound.
    """

    def __init__(self, stream: StreamInfo, segment_seconds: float, sink: SegmentSink,
                 request_keyframe: Callable[[], None] = lambda: None, audio: AudioInfo | None = None):
        self.stream = stream
        self.audio = audio
        self.segment_us = round(segment_seconds * 1_000_000)
        self.sink = sink
        self.request_keyframe = request_keyframe
        self.incident_id: str | None = None
        self.pre_event_mode: str | None = None
        self._frames: list[EncodedFrame] = []
        self._pre_event = 0
        self._lost_before = 0
        self._index = 0
        self._keyframe_asked = False
        self._held: _Closing | None = None  # closed at a gap; final or not is known only later
        self._closing: deque[_Closing] = deque()  # closed, in order, waiting for their sound or decision
        self._sound: list[AudioPacket] = []  # packets of the open span
        self._sound_preroll: AudioPacket | None = None  # the packet before the open span's first one
        self._previous: AudioPacket | None = None  # the last packet seen, taken or not
        self._sound_from: int | None = None  # where the open span starts; None before the first picture
        self._sound_until: int | None = None  # the end of the newest packet seen (packets come in order)
        self._video_now: int | None = None  # the newest picture's time, recording or not
        self.segments_emitted = 0

    @property
    def active(self) -> bool:
        return self.incident_id is not None

    @property
    def waiting(self) -> int:
        """Closed segments not handed over yet (sound still due, or final flag still open)."""
        return len(self._closing)

    def begin(self, incident_id: str, pre_event_mode: str | None = None) -> None:
        """Open an incident; every segment of it names ``pre_event_mode`` (when its ring filled)."""
        if self.active:
            raise RuntimeError(f"segmenter busy with incident {self.incident_id}")
        self.incident_id = incident_id
        self.pre_event_mode = pre_event_mode
        self._frames = []
        self._pre_event = self._lost_before = self._index = 0
        self._keyframe_asked = False
        self._sound, self._sound_from, self._sound_preroll = [], None, None

    def add(self, frame: EncodedFrame, pre_event: bool = False) -> None:
        if not self.active:
            raise RuntimeError("no incident open")
        self._video_now = frame.pts_us
        if not self._frames:
            if not frame.keyframe:
                self._lost_before += 1  # waiting for the first keyframe of a segment
                self._ask_keyframe()
                self._release_ready()
                return
            self._release_held(final=False)
            if self._sound_from is None:
                self._sound_from = frame.pts_us
                before = [p for p in self._sound if p.pts_us < frame.pts_us]
                if before:
                    self._sound_preroll = before[-1]
                self._sound = [p for p in self._sound if p.pts_us >= frame.pts_us]
        elif frame.keyframe and frame.pts_us - self._frames[0].pts_us >= self.segment_us:
            self._close(final=False, until_us=frame.pts_us)
        elif not frame.keyframe and frame.pts_us - self._frames[0].pts_us >= self.segment_us:
            self._ask_keyframe()  # the GOP is longer than planned: cut as soon as the encoder can
        if frame.keyframe:
            self._keyframe_asked = False
        self._frames.append(frame)
        if pre_event:
            self._pre_event += 1
        self._release_ready()

    def add_audio(self, packet: AudioPacket) -> bool:
        """Take a packet that belongs to this incident's time; False when it does not (before or after)."""
        if self.audio is None:
            return False
        self._sound_until = packet.end_us if self._sound_until is None else max(self._sound_until, packet.end_us)
        previous, self._previous = self._previous, packet
        follows = previous is not None and abs(packet.pts_us - previous.end_us) <= 1
        taken = False
        for entry in self._closing:
            if entry.from_us <= packet.pts_us < entry.until_us:
                if not entry.audio and entry.preroll is None and follows:
                    entry.preroll = previous
                entry.audio.append(packet)
                taken = True
                break
        if not taken and self.active and (self._sound_from is None or packet.pts_us >= self._sound_from):
            if not self._sound and self._sound_preroll is None and follows:
                self._sound_preroll = previous
            self._sound.append(packet)
            taken = True
        self._release_ready()
        return taken

    def advance(self, pts_us: int) -> None:
        """The pictures reached ``pts_us`` outside a recording: segments waiting in vain for sound may leave."""
        self._video_now = pts_us
        self._release_ready()

    def gap(self, lost_frames: int) -> None:
        """``lost_frames`` never arrived: close the segment here, resume at the next keyframe."""
        if not self.active:
            return
        if self._frames:
            self._held = self._close(final=False, until_us=None, decided=False)
        self._lost_before += lost_frames
        self._ask_keyframe()

    def end(self) -> None:
        """Close the incident: the last segment goes out marked final (once its sound is in)."""
        if not self.active:
            return
        if self._frames:
            self._release_held(final=False)
            self._close(final=True, until_us=None)
        else:
            if self._lost_before:
                logger.warning("incident %s: %d frames after its last segment were not recorded (lost, or "
                               "waiting for a keyframe when the incident ended)", self.incident_id, self._lost_before)
            held = self._held
            if held is not None and self._video_now is not None and self._video_now > held.until_us:
                # The incident went on after the gap without a new picture; its sound is still evidence.
                held.audio += [p for p in self._sound if p.pts_us < self._video_now]
                held.until_us = self._video_now
            self._release_held(final=True)
        self.incident_id = None
        self._sound, self._sound_from, self._sound_preroll = [], None, None
        self._release_ready()

    def flush(self) -> None:
        """Hand over every decided segment now, with whatever sound it has (shutdown)."""
        self._release_ready(force=True)

    def _close(self, final: bool, until_us: int | None, decided: bool = True) -> _Closing:
        segment = Segment(self.incident_id, self._index, tuple(self._frames), self.stream, final,
                          self._pre_event, self._lost_before, pre_event_mode=self.pre_event_mode)
        until = segment.end_pts_us if until_us is None else until_us
        start = segment.start_pts_us if self._sound_from is None else self._sound_from
        taken = [p for p in self._sound if p.pts_us < until]
        entry = _Closing(segment, taken, self._sound_preroll, start, until, decided)
        self._sound = [p for p in self._sound if p.pts_us >= until]
        self._sound_from = until
        self._sound_preroll = (taken[-1] if taken else self._sound_preroll) if self._sound else None
        self._closing.append(entry)
        self._frames = []
        self._pre_event = self._lost_before = 0
        self._index += 1
        return entry

    def _release_held(self, final: bool) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            if final:
                held.segment = dataclasses.replace(held.segment, final=True)
            held.decided = True

    def _release_ready(self, force: bool = False) -> None:
        while self._closing and self._closing[0].decided and (force or self._sound_complete(self._closing[0])):
            self._hand_over(self._closing.popleft().finish(self.audio))

    def _sound_complete(self, entry: _Closing) -> bool:
        if self.audio is None:
            return True
        if self._sound_until is not None and self._sound_until >= entry.until_us:
            return True
        if self._video_now is not None and self._video_now >= entry.until_us + AUDIO_WAIT_US:
            logger.warning("segment %d of incident %s leaves without the sound after %.3f s: none arrived "
                           "(microphone silent or gone)", entry.segment.index, entry.segment.incident_id,
                           (self._sound_until or entry.from_us) / 1e6)
            return True
        return False

    def _hand_over(self, segment: Segment) -> None:
        self.segments_emitted += 1
        self.sink(segment)

    def _ask_keyframe(self) -> None:
        if not self._keyframe_asked:
            self._keyframe_asked = True
            self.request_keyframe()
