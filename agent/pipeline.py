"""The capture pipeline's threads: camera → frame queue → recorder thread → segment sink.

The camera's thread only calls :meth:`RecorderThread.offer`, which never blocks: when the recorder
falls behind (a slow sealer, a full disk), frames are dropped at the queue, counted, and the recorder
turns the gap into a visible overrun alarm and a clean cut in the evidence. The recorder thread owns
the ring, the state machine and the segmenter; other threads talk to it only through its queues and
read its state only as immutable snapshots. Audio packets travel through the same queue as the
frames, in the order the source handed them over, so one clock orders both; a dropped packet is
counted apart from dropped frames.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Callable

from camera.frames import AudioPacket, EncodedFrame

from .recorder import Recorder, RecorderStatus, Trigger

logger = logging.getLogger(__name__)

_SHUTDOWN = object()
STATUS_INTERVAL_S = 0.1


class RecorderThread(threading.Thread):
    """Runs a :class:`Recorder`; frames and triggers arrive through two queues.

    Triggers have their own unbounded queue so that a full frame queue can never swallow a START.
    """

    def __init__(self, recorder: Recorder, queue_frames: int, on_status: Callable[[RecorderStatus], None] = None):
        super().__init__(name="RecorderThread", daemon=True)
        self.recorder = recorder
        self._frames: queue.Queue[EncodedFrame | AudioPacket] = queue.Queue(maxsize=max(1, queue_frames))
        self._controls: queue.SimpleQueue = queue.SimpleQueue()
        self._dropped_at_queue = 0  # written by the camera thread only
        self._audio_dropped_at_queue = 0  # written by the audio source's thread only
        self._status_due = 0.0
        self._on_status = on_status
        #: Latest immutable snapshot; replaced (never mutated) so any thread may read it.
        self.status: RecorderStatus = recorder.status()
        self.fault: BaseException | None = None

    # -- called from other threads -------------------------------------------------------------------
    def offer(self, frame: EncodedFrame) -> None:
        """The camera callback: enqueue or drop, never wait."""
        try:
            self._frames.put_nowait(frame)
        except queue.Full:
            self._dropped_at_queue += 1

    def offer_audio(self, packet: AudioPacket) -> None:
        """The audio callback: enqueue or drop (the recorder sees the gap in the numbers), never wait."""
        try:
            self._frames.put_nowait(packet)
        except queue.Full:
            self._audio_dropped_at_queue += 1

    def trigger(self, trigger: Trigger) -> None:
        self._controls.put(trigger)

    def call(self, fn: Callable[[Recorder], None]) -> None:
        """Run ``fn(recorder)`` on the recorder thread (reconfiguration without locks)."""
        self._controls.put(fn)

    def stop(self, timeout: float = 10.0) -> None:
        """Process what is queued, close a running recording (its last segment is emitted), end."""
        self._controls.put(_SHUTDOWN)
        self.join(timeout)
        if self.is_alive():
            logger.error("recorder thread did not stop within %.1f s", timeout)

    @property
    def frames_dropped_at_queue(self) -> int:
        return self._dropped_at_queue

    # -- the thread ----------------------------------------------------------------------------------
    def run(self) -> None:
        try:
            while True:
                if self._drain_controls():
                    self._drain_frames()
                    self._report_unseen_drops()
                    self.recorder.shutdown()
                    break
                self._publish_status()  # a trigger's state change shows at once, not after the next frame
                try:
                    frame = self._frames.get(timeout=0.1)
                except queue.Empty:
                    self._report_unseen_drops()
                    self.recorder.tick()
                else:
                    self._handle(frame)
                self._publish_status()
        except Exception as exc:
            logger.exception("recorder thread failed")
            self.fault = exc
            raise
        finally:
            self._publish_status()

    def _drain_controls(self) -> bool:
        while True:
            try:
                item = self._controls.get_nowait()
            except queue.Empty:
                return False
            if item is _SHUTDOWN:
                return True
            if isinstance(item, Trigger):
                self.recorder.handle_trigger(item)
            else:
                item(self.recorder)

    def _report_unseen_drops(self) -> None:
        """Drops at the queue normally show as sequence gaps; the last ones before a pause do not.

        Every loss in this pipeline happens at this queue (the source numbers frames as it hands them
        over), so what the queue dropped and the recorder has not yet counted is still unreported.
        """
        unseen = self._dropped_at_queue - self.recorder.frames_lost
        if unseen > 0:
            self.recorder.note_lost(unseen)

    def _drain_frames(self) -> None:
        while True:
            try:
                item = self._frames.get_nowait()
            except queue.Empty:
                return
            self._handle(item)

    def _handle(self, item: EncodedFrame | AudioPacket) -> None:
        if isinstance(item, AudioPacket):
            self.recorder.handle_audio(item)
        else:
            self.recorder.handle_frame(item)

    def _publish_status(self) -> None:
        """Refresh the snapshot on every state change and otherwise at most every 100 ms."""
        now = time.monotonic()
        recorder = self.recorder
        if (now < self._status_due and recorder.state is self.status.state
                and recorder.incident_id == self.status.incident_id):
            return
        self._status_due = now + STATUS_INTERVAL_S
        self.status = recorder.status()
        if self._on_status is not None:
            self._on_status(self.status)
