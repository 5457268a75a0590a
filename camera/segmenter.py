"""Cuts one recording into segments at keyframes, every ``segment_seconds``.

Each segment starts at an IDR frame with SPS/PPS, so it decodes on its own; consecutive segments
share no frame and miss none. When frames were lost upstream, the current segment is closed at the
gap and the next one starts at the next keyframe, with the loss written into that segment: the
evidence then says exactly where something is missing instead of carrying undecodable frames. A
segment closed at a gap is held back until the next one starts, because only then is it known
whether it was the incident's final one.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Callable

from .frames import EncodedFrame, StreamInfo
from .segment import Segment

logger = logging.getLogger(__name__)

SegmentSink = Callable[[Segment], None]


class Segmenter:
    """Collects the frames of one incident and hands finished segments to ``sink``.

    Not thread-safe: it lives on the recorder thread. ``sink`` may block (back-pressure from the
    sealer); the capture thread is decoupled from that by the recorder's frame queue.
    """

    def __init__(self, stream: StreamInfo, segment_seconds: float, sink: SegmentSink,
                 request_keyframe: Callable[[], None] = lambda: None):
        self.stream = stream
        self.segment_us = round(segment_seconds * 1_000_000)
        self.sink = sink
        self.request_keyframe = request_keyframe
        self.incident_id: str | None = None
        self._frames: list[EncodedFrame] = []
        self._pre_event = 0
        self._lost_before = 0
        self._index = 0
        self._keyframe_asked = False
        self._held: Segment | None = None  # closed at a gap; final or not is known only later
        self.segments_emitted = 0

    @property
    def active(self) -> bool:
        return self.incident_id is not None

    def begin(self, incident_id: str) -> None:
        if self.active:
            raise RuntimeError(f"segmenter busy with incident {self.incident_id}")
        self.incident_id = incident_id
        self._frames = []
        self._pre_event = self._lost_before = self._index = 0
        self._keyframe_asked = False

    def add(self, frame: EncodedFrame, pre_event: bool = False) -> None:
        if not self.active:
            raise RuntimeError("no incident open")
        if not self._frames:
            if not frame.keyframe:
                self._lost_before += 1  # waiting for the first keyframe of a segment
                self._ask_keyframe()
                return
            self._release_held(final=False)
        elif frame.keyframe and frame.pts_us - self._frames[0].pts_us >= self.segment_us:
            self._emit(final=False)
        elif not frame.keyframe and frame.pts_us - self._frames[0].pts_us >= self.segment_us:
            self._ask_keyframe()  # the GOP is longer than planned: cut as soon as the encoder can
        if frame.keyframe:
            self._keyframe_asked = False
        self._frames.append(frame)
        if pre_event:
            self._pre_event += 1

    def gap(self, lost_frames: int) -> None:
        """``lost_frames`` never arrived: close the segment here, resume at the next keyframe."""
        if not self.active:
            return
        if self._frames:
            self._held = self._close(final=False)
        self._lost_before += lost_frames
        self._ask_keyframe()

    def end(self) -> None:
        """Close the incident: the last segment goes out marked final."""
        if not self.active:
            return
        if self._frames:
            self._release_held(final=False)
            self._emit(final=True)
        else:
            if self._lost_before:
                logger.warning("incident %s: %d frames after its last segment were not recorded (lost, or "
                               "waiting for a keyframe when the incident ended)", self.incident_id, self._lost_before)
            self._release_held(final=True)
        self.incident_id = None

    def _close(self, final: bool) -> Segment:
        segment = Segment(self.incident_id, self._index, tuple(self._frames), self.stream, final,
                          self._pre_event, self._lost_before)
        self._frames = []
        self._pre_event = self._lost_before = 0
        self._index += 1
        return segment

    def _emit(self, final: bool) -> None:
        self._hand_over(self._close(final))

    def _release_held(self, final: bool) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            self._hand_over(dataclasses.replace(held, final=final) if final else held)

    def _hand_over(self, segment: Segment) -> None:
        self.segments_emitted += 1
        self.sink(segment)

    def _ask_keyframe(self) -> None:
        if not self._keyframe_asked:
            self._keyframe_asked = True
            self.request_keyframe()
