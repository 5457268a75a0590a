"""The recorder: the state machine between the pre-event ring and the segmenter.

STANDBY   the ring fills (RAM only) in pre-event mode ``standby``; nothing is stored.
MIRROR    the front display shows the live image as an announcement; the ring fills in modes
          ``standby`` and ``announced``.
RECORDING the incident's segments start with the ring's content (from its oldest keyframe inside the
          pre-event window), then live frames.
FINISHING the stop trigger came; recording goes on for ``post_event_seconds``, then ends.

When the ring fills is the law's question, so it is a setting (``recording.pre_event_mode``, see
:data:`base.legal.PRE_EVENT_MODES`): ``standby`` in every standby, ``announced`` only while the mirror
shows the person the picture (the officer's short press), ``off`` never. Whenever the ring stops
filling (the mirror goes off in ``announced``) it is emptied at once, so nothing seen before the
announcement or after it ended stays in RAM; when it starts filling, a keyframe is asked for, so the
pre-event part starts with the announcement rather than up to a GOP later. A recording records the
mode that applied to its pre-event part (``off`` when the window is 0).

Triggers are idempotent (a second START while recording changes nothing) and every transition is an
event that listeners (display, telemetry, audit) observe. The :class:`Recorder` itself is plain,
single-threaded logic driven by :class:`agent.pipeline.RecorderThread`, so tests can drive it frame
by frame.

Sound (a source with :attr:`~camera.source.FrameSource.audio`) follows the pictures by time: outside
a recording its packets go to the ring, in a recording (and while closed segments still wait for the
sound of their span) to the segmenter, which assigns each packet to the segment whose span it
starts in. A gap in the packets' numbers is counted as lost sound, like lost frames. When sound is
expected and the pictures run ``AUDIO_SILENCE_US`` past the last packet (a microphone unplugged,
an audio thread that died), the recorder reports the silence (``audio_silent``); it clears when
packets come again. The segments declare what is missing either way.
"""

from __future__ import annotations

import enum
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Callable

from base.legal import PRE_EVENT_MODES
from camera.frames import AudioInfo, AudioPacket, EncodedFrame, StreamInfo
from camera.ring import PreEventRing, RingStats
from camera.segmenter import Segmenter, SegmentSink

logger = logging.getLogger(__name__)

#: An overrun alarm stays raised this long after the last dropped frame.
OVERRUN_ALARM_HOLD_S = 10.0
#: No sound packet for this long while pictures go on: the microphone is gone (or its thread died).
AUDIO_SILENCE_US = 2_000_000
#: A refused START is reported this long (the cause itself, e.g. storage, has its own lasting alert).
REFUSAL_HOLD_S = 30.0


class State(str, enum.Enum):
    STANDBY = "standby"
    MIRROR = "mirror"
    RECORDING = "recording"
    FINISHING = "finishing"

    @property
    def recording(self) -> bool:
        return self in (State.RECORDING, State.FINISHING)


class Action(str, enum.Enum):
    START = "start"
    STOP = "stop"
    MIRROR_ON = "mirror_on"
    MIRROR_OFF = "mirror_off"
    MIRROR_TOGGLE = "mirror_toggle"


@dataclass(frozen=True)
class Trigger:
    """A request to change state, from the button, a remote command or a trigger input."""

    action: Action
    origin: str = "unknown"  # button, command, input, shutdown, test …
    detail: str = ""
    wall_time: float = field(default_factory=time.time)


@dataclass(frozen=True)
class StateChanged:
    previous: State
    state: State
    incident_id: str | None
    trigger: Trigger | None
    wall_time: float


@dataclass(frozen=True)
class TriggerIgnored:
    trigger: Trigger
    state: State
    reason: str


@dataclass(frozen=True)
class FramesLost:
    """Frames never reached the recorder (capture queue overrun or encoder drop): an alarm."""

    count: int
    total: int
    state: State
    incident_id: str | None
    wall_time: float


@dataclass(frozen=True)
class RecorderStatus:
    """Immutable snapshot for display and telemetry."""

    state: State
    incident_id: str | None
    recording_since: float | None
    segments_emitted: int
    frames_seen: int
    frames_lost: int
    overrun_alarm: bool
    refused_reason: str | None
    ring: RingStats
    audio_packets_seen: int = 0
    audio_packets_lost: int = 0
    #: Sound is expected but has not come for AUDIO_SILENCE_US of pictures.
    audio_silent: bool = False
    #: When the ring fills (recording.pre_event_mode), and whether it fills now (outside a recording).
    pre_event_mode: str = "standby"
    pre_recording: bool = False


Listener = Callable[[object], None]


def new_incident_id(wall_time: float) -> str:
    """Readable and unique: UTC start time plus a random suffix (two devices never clash)."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(wall_time)) + "-" + secrets.token_hex(3)


class Recorder:
    """Feeds frames into the ring or the segmenter according to the state.

    ``gate`` is asked before a recording starts and may return a reason to refuse (storage full);
    ``request_keyframe`` reaches the encoder so a recording starts without waiting a whole GOP.
    """

    def __init__(self, stream: StreamInfo, ring: PreEventRing, segment_seconds: float, sink: SegmentSink,
                 post_event_seconds: float = 0.0, request_keyframe: Callable[[], None] = lambda: None,
                 gate: Callable[[], str | None] = lambda: None, audio: AudioInfo | None = None,
                 pre_event_mode: str = "standby"):
        if pre_event_mode not in PRE_EVENT_MODES:
            raise ValueError(f"pre_event_mode {pre_event_mode!r} is not one of {', '.join(PRE_EVENT_MODES)}")
        self.pre_event_mode = pre_event_mode
        self.stream = stream
        self.audio = audio
        self.ring = ring
        self.segmenter = Segmenter(stream, segment_seconds, sink, request_keyframe, audio)
        self.post_event_us = round(post_event_seconds * 1_000_000)
        self.request_keyframe = request_keyframe
        self.gate = gate
        self.state = State.STANDBY
        self.incident_id: str | None = None
        self.recording_since: float | None = None
        self._resume_state = State.STANDBY
        self._stop_at_pts: int | None = None
        self._stop_deadline: float | None = None
        self._last_seq: int | None = None
        self._last_pts = 0
        self._last_loss_wall = 0.0
        self.frames_seen = 0
        self.frames_lost = 0
        self._last_audio_seq: int | None = None
        self.audio_packets_seen = 0
        self.audio_packets_lost = 0
        self._heard_until_us: int | None = None  # the end of the newest packet, or the first picture's time
        self.audio_silent = False
        self.refused_reason: str | None = None
        self._refused_wall = 0.0
        self._listeners: list[Listener] = []

    # -- observers -----------------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> None:
        """``listener(event)`` runs on the recorder thread: it must only enqueue or copy."""
        self._listeners.append(listener)

    def _publish(self, event) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # a broken observer must never stop a recording
                logger.exception("recorder listener %r failed", listener)

    def _set_state(self, state: State, trigger: Trigger | None) -> None:
        filled = not self.state.recording and self._ring_fills()
        previous, self.state = self.state, state
        logger.info("recorder %s -> %s (%s)", previous.value, state.value,
                    trigger.origin if trigger else "internal")
        if not state.recording:
            if not self._ring_fills():
                self._empty_ring(f"{state.value} in pre-event mode {self.pre_event_mode}")
            elif not filled and not previous.recording:
                self.request_keyframe()  # the pre-event part starts with the announcement, not a GOP later
        self._publish(StateChanged(previous, state, self.incident_id, trigger, time.time()))

    def _ring_fills(self) -> bool:
        """Whether frames outside a recording go to the pre-event ring in the current state."""
        if self.pre_event_mode == "announced":
            return self.state is State.MIRROR
        return self.pre_event_mode == "standby"

    def _empty_ring(self, why: str) -> None:
        if len(self.ring) or self.ring.nbytes:
            logger.info("pre-event ring emptied (%d frames, %d bytes): %s", len(self.ring), self.ring.nbytes, why)
        self.ring.clear()

    @property
    def applied_pre_event_mode(self) -> str:
        """The mode a recording starting now records in its manifest: ``off`` when the window is 0."""
        return self.pre_event_mode if self.ring.window_us else "off"

    # -- inputs --------------------------------------------------------------------------------------
    def handle_frame(self, frame: EncodedFrame) -> None:
        self.frames_seen += 1
        if self._last_seq is not None and frame.seq != self._last_seq + 1:
            lost = frame.seq - self._last_seq - 1
            if lost > 0:
                self._lose(lost)
        self._last_seq = frame.seq
        self._last_pts = frame.pts_us
        if self.audio is not None:
            self._watch_silence(frame.pts_us)
        if self.state.recording:
            self.segmenter.add(frame)
            if self._stop_at_pts is not None and frame.pts_us >= self._stop_at_pts:
                self._finish(None)
        else:
            self.segmenter.advance(frame.pts_us)
            if self._ring_fills():
                self.ring.append(frame)
                if self.ring.wants_keyframe:
                    self.request_keyframe()

    def _watch_silence(self, pts_us: int) -> None:
        if self._heard_until_us is None:
            self._heard_until_us = pts_us
        elif not self.audio_silent and pts_us - self._heard_until_us > AUDIO_SILENCE_US:
            self.audio_silent = True
            logger.error("no sound for %.1f s while the pictures go on: the microphone is gone or silent; "
                         "recording pictures without sound", (pts_us - self._heard_until_us) / 1e6)

    def handle_audio(self, packet: AudioPacket) -> None:
        self._heard_until_us = packet.end_us
        if self.audio_silent:
            self.audio_silent = False
            logger.warning("sound is back")
        self.audio_packets_seen += 1
        if self._last_audio_seq is not None and packet.seq > self._last_audio_seq + 1:
            lost = packet.seq - self._last_audio_seq - 1
            self.audio_packets_lost += lost
            logger.warning("%d audio packets lost (%d in total)", lost, self.audio_packets_lost)
        self._last_audio_seq = packet.seq
        if not self.segmenter.add_audio(packet) and not self.state.recording and self._ring_fills():
            self.ring.append_audio(packet)

    def note_lost(self, count: int) -> None:
        """``count`` frames after the last one seen were dropped before reaching the recorder.

        Used when no later frame will reveal the gap (the source stalled or stopped); the sequence
        is advanced so that a later frame does not report the same loss twice.
        """
        if count > 0:
            if self._last_seq is not None:
                self._last_seq += count
            self._lose(count)

    def _lose(self, count: int) -> None:
        self.frames_lost += count
        self._last_loss_wall = time.time()
        if self.state.recording:
            self.segmenter.gap(count)
        else:
            self.ring.mark_gap()
        logger.warning("%d frames lost (%d in total) — the recorder cannot keep up", count, self.frames_lost)
        self._publish(FramesLost(count, self.frames_lost, self.state, self.incident_id, self._last_loss_wall))

    def handle_trigger(self, trigger: Trigger) -> None:
        action, state = trigger.action, self.state
        if action is Action.START:
            if state is State.FINISHING:
                self._stop_at_pts = self._stop_deadline = None
                self._set_state(State.RECORDING, trigger)  # re-triggered during post-event: carry on
            elif state.recording:
                self._ignore(trigger, "already recording")
            else:
                self._start(trigger)
        elif action is Action.STOP:
            if state is State.RECORDING:
                if self.post_event_us:
                    self._stop_at_pts = self._last_pts + self.post_event_us
                    self._stop_deadline = time.monotonic() + self.post_event_us / 1e6 + 2.0
                    self._set_state(State.FINISHING, trigger)
                else:
                    self._finish(trigger)
            else:
                self._ignore(trigger, "not recording" if not state.recording else "already stopping")
        elif action in (Action.MIRROR_ON, Action.MIRROR_OFF, Action.MIRROR_TOGGLE):
            self._mirror(trigger)

    def _mirror(self, trigger: Trigger) -> None:
        on = {Action.MIRROR_ON: True, Action.MIRROR_OFF: False}.get(trigger.action)
        if self.state.recording:
            # While recording the display always mirrors; remember the wish for afterwards.
            want = on if on is not None else self._resume_state is State.STANDBY
            self._resume_state = State.MIRROR if want else State.STANDBY
            self._ignore(trigger, "recording: the display keeps mirroring until the recording ends")
            return
        want = on if on is not None else self.state is State.STANDBY
        target = State.MIRROR if want else State.STANDBY
        if target is self.state:
            self._ignore(trigger, f"already {target.value}")
        else:
            self._set_state(target, trigger)

    def _ignore(self, trigger: Trigger, reason: str) -> None:
        self._publish(TriggerIgnored(trigger, self.state, reason))

    def _start(self, trigger: Trigger) -> None:
        reason = self.gate()
        if reason:
            self.refused_reason = reason
            self._refused_wall = time.time()
            logger.error("recording refused: %s", reason)
            self._ignore(trigger, f"refused: {reason}")
            return
        self.refused_reason = None
        self._resume_state = self.state
        self.incident_id = new_incident_id(trigger.wall_time)
        self.recording_since = time.time()
        pre_event, pre_event_audio = self.ring.drain()
        self.segmenter.begin(self.incident_id, self.applied_pre_event_mode)
        for frame in pre_event:
            self.segmenter.add(frame, pre_event=True)
        for packet in pre_event_audio:
            self.segmenter.add_audio(packet)
        if not pre_event:
            self.request_keyframe()  # no pre-event footage: start at the very next frame possible
        self._set_state(State.RECORDING, trigger)

    def _finish(self, trigger: Trigger | None) -> None:
        self.segmenter.end()
        self._stop_at_pts = self._stop_deadline = None
        self._set_state(self._resume_state, trigger)
        self.incident_id = None
        self.recording_since = None

    def reconfigure(self, pre_event_seconds: float, post_event_seconds: float,
                    pre_event_mode: str | None = None) -> None:
        """Apply a reloaded window: a shorter one takes effect with the next frame, a longer one fills."""
        if pre_event_mode is not None:
            if pre_event_mode not in PRE_EVENT_MODES:
                raise ValueError(f"pre_event_mode {pre_event_mode!r} is not one of {', '.join(PRE_EVENT_MODES)}")
            self.pre_event_mode = pre_event_mode
        self.ring.window_us = round(pre_event_seconds * 1_000_000)
        if pre_event_seconds == 0:
            self.ring.clear()  # pre-recording switched off: nothing may stay in RAM
        elif not self.state.recording and not self._ring_fills():
            self._empty_ring(f"pre-event mode {self.pre_event_mode} in {self.state.value}")
        self.post_event_us = round(post_event_seconds * 1_000_000)
        logger.info("pre-event window %.1f s (mode %s), post-event %.1f s", pre_event_seconds, self.pre_event_mode,
                    post_event_seconds)

    def tick(self) -> None:
        """Called when no frame came for a while: a post-event stop must not wait for a dead camera."""
        if self._stop_deadline is not None and time.monotonic() >= self._stop_deadline:
            logger.warning("post-event time over without frames; closing the recording")
            self._finish(None)

    def shutdown(self) -> None:
        """Close a running recording at once (SIGTERM, fatal fault): its last segment is emitted."""
        if self.state.recording:
            self._finish(Trigger(Action.STOP, "shutdown"))
        self.segmenter.flush()  # the sound still due will not come any more

    def status(self) -> RecorderStatus:
        now = time.time()
        overrun = self.frames_lost > 0 and now - self._last_loss_wall < OVERRUN_ALARM_HOLD_S
        refused = self.refused_reason if now - self._refused_wall < REFUSAL_HOLD_S else None
        return RecorderStatus(self.state, self.incident_id, self.recording_since,
                              self.segmenter.segments_emitted, self.frames_seen, self.frames_lost, overrun,
                              refused, self.ring.stats(), self.audio_packets_seen, self.audio_packets_lost,
                              self.audio_silent, self.pre_event_mode,
                              not self.state.recording and self.ring.window_us > 0 and self._ring_fills())
