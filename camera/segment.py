"""A segment: a stretch of one recording that starts at a keyframe and decodes on its own."""

from __future__ import annotations

from dataclasses import dataclass

from .frames import AudioInfo, AudioPacket, EncodedFrame, StreamInfo


@dataclass(frozen=True)
class Segment:
    """Consecutive frames of one incident, cut at a keyframe, handed from segmenter to sealer.

    The frames are the very objects the camera produced (no copy); :meth:`payload` joins them into the
    Annex-B H.264 elementary stream that is sealed, and that any decoder plays on its own.

    With sound, ``audio`` holds the packets whose start lies in ``[audio_from_us, audio_until_us)``.
    The spans of one incident's segments follow each other without gap or overlap (a span ends where
    the next segment's first picture starts), so every packet of the incident is in exactly one
    segment, and sound recorded while pictures were lost (an overrun gap) is kept in the segment after
    the gap. ``audio_missing_us`` is sound that should be in the span but never arrived (microphone
    fault, packets dropped), declared like ``dropped_frames``. ``audio_preroll`` is the packet just
    before the span (also the previous segment's last): not part of this segment's sound, but what a
    decoder needs first to decode the first packet correctly (AAC frames overlap).
    """

    incident_id: str
    index: int
    frames: tuple[EncodedFrame, ...]
    stream: StreamInfo
    #: True for the last segment of the incident.
    final: bool = False
    #: How many leading frames came from the pre-event ring (recorded before the trigger).
    pre_event_frames: int = 0
    #: Frames lost just before this segment's first frame: the pipeline dropped them (overrun), closed
    #: the previous segment at the gap and resumed at this keyframe. 0 in a healthy recording.
    dropped_frames: int = 0
    audio: tuple[AudioPacket, ...] = ()
    audio_preroll: AudioPacket | None = None
    audio_stream: AudioInfo | None = None
    audio_from_us: int | None = None
    audio_until_us: int | None = None
    audio_missing_us: int = 0
    #: When the ring filled before this recording (off, announced, standby); None where nobody said.
    pre_event_mode: str | None = None

    def __post_init__(self):
        if not self.frames:
            raise ValueError("a segment holds at least one frame")
        if not self.frames[0].keyframe:
            raise ValueError("a segment must start with a keyframe")

    @property
    def frame_count(self) -> int:
        return len(self.frames)

    @property
    def nbytes(self) -> int:
        return sum(f.size for f in self.frames)

    @property
    def audio_duration_us(self) -> int:
        """How much sound the segment holds (the sum of its packets' durations)."""
        return sum(p.duration_us for p in self.audio)

    @property
    def start_pts_us(self) -> int:
        return self.frames[0].pts_us

    @property
    def end_pts_us(self) -> int:
        """Presentation time just after the last frame (last pts plus one frame duration)."""
        return self.frames[-1].pts_us + round(1_000_000 / self.stream.fps)

    @property
    def duration_s(self) -> float:
        return (self.end_pts_us - self.start_pts_us) / 1e6

    @property
    def start_wall(self) -> float:
        return self.frames[0].wall_time

    @property
    def end_wall(self) -> float:
        return self.frames[-1].wall_time + 1.0 / self.stream.fps

    @property
    def first_seq(self) -> int:
        return self.frames[0].seq

    @property
    def last_seq(self) -> int:
        return self.frames[-1].seq

    def payload(self) -> bytes:
        """The segment as one Annex-B byte stream (the bytes that get encrypted)."""
        return b"".join(f.data for f in self.frames)
