"""The incident path end to end in fast mode: synthetic H.264 → ring → recorder → segments → decode."""

import pytest

from agent.recorder import Action, FramesLost, Recorder, State, StateChanged, Trigger, TriggerIgnored
from camera.ring import PreEventRing
from camera.decode import decode_frame_numbers as decode_counters

FPS = 30


def make_recorder(source, pre_event, segment_seconds=2.0, post_event=0.0, gate=lambda: None):
    segments, events = [], []
    recorder = Recorder(source.info, PreEventRing(pre_event, 64 << 20), segment_seconds, segments.append,
                        post_event, source.request_keyframe, gate)
    recorder.subscribe(events.append)
    return recorder, segments, events


def feed(recorder, frames, n):
    for _ in range(n):
        recorder.handle_frame(next(frames))


def check_incident(segments, first_seq, last_seq):
    """Every segment decodes alone; frame numbers run without a hole or a repeat across all cuts."""
    assert segments and segments[-1].final and not any(s.final for s in segments[:-1])
    assert [s.index for s in segments] == list(range(len(segments)))
    numbers = []
    for segment in segments:
        assert segment.frames[0].keyframe
        decoded = decode_counters(segment.payload())
        assert decoded == [f.seq for f in segment.frames]  # decodes on its own, every picture intact
        numbers += decoded
    assert numbers == list(range(first_seq, last_seq + 1))


@pytest.mark.parametrize("pre_event", [3.0, 5.0])
def test_incident_with_pre_event_decodes_continuously(small_source, pre_event):
    source = small_source()
    frames = source.frames()
    recorder, segments, events = make_recorder(source, pre_event)
    feed(recorder, frames, 10 * FPS + 7)  # 10 s standby; the trigger comes mid-GOP
    recorder.handle_trigger(Trigger(Action.START, "test"))
    assert recorder.state is State.RECORDING and recorder.incident_id
    feed(recorder, frames, 7 * FPS)
    recorder.handle_trigger(Trigger(Action.STOP, "test"))
    assert recorder.state is State.STANDBY

    trigger_seq = 10 * FPS + 7
    first = segments[0].frames[0]
    # the pre-event part starts at the oldest keyframe inside the window: within one GOP of the full window
    held = (trigger_seq - 1 - first.seq) / FPS
    assert pre_event - 1.0 <= held <= pre_event
    assert sum(s.pre_event_frames for s in segments) == trigger_seq - first.seq
    check_incident(segments, first.seq, trigger_seq + 7 * FPS - 1)
    # cuts happen at keyframes once a segment is 2 s long
    assert all(abs(s.duration_s - 2.0) < 1e-6 for s in segments[:-1])
    assert len({s.incident_id for s in segments}) == 1
    states = [(e.previous, e.state) for e in events if isinstance(e, StateChanged)]
    assert states == [(State.STANDBY, State.RECORDING), (State.RECORDING, State.STANDBY)]


def test_zero_pre_event_keeps_nothing_and_starts_at_the_next_keyframe(small_source):
    source = small_source(gop_frames=300)  # a long GOP proves the start waits for a forced keyframe only
    frames = source.frames()
    recorder, segments, _ = make_recorder(source, 0.0)
    feed(recorder, frames, 100)
    assert len(recorder.ring) == 0
    recorder.handle_trigger(Trigger(Action.START, "test"))
    feed(recorder, frames, 3 * FPS)
    recorder.handle_trigger(Trigger(Action.STOP, "test"))
    assert segments[0].pre_event_frames == 0
    assert segments[0].frames[0].seq == 100  # the keyframe was forced at once: no frame lost
    check_incident(segments, 100, 100 + 3 * FPS - 1)


def test_triggers_are_idempotent_and_mirror_is_announced(small_source):
    source = small_source()
    frames = source.frames()
    recorder, segments, events = make_recorder(source, 1.0)
    recorder.handle_trigger(Trigger(Action.MIRROR_TOGGLE, "button"))
    assert recorder.state is State.MIRROR
    feed(recorder, frames, 40)
    recorder.handle_trigger(Trigger(Action.START, "button"))
    incident = recorder.incident_id
    recorder.handle_trigger(Trigger(Action.START, "command"))
    assert recorder.incident_id == incident
    feed(recorder, frames, 40)
    recorder.handle_trigger(Trigger(Action.STOP, "button"))
    recorder.handle_trigger(Trigger(Action.STOP, "command"))
    assert recorder.state is State.MIRROR  # back to where the officer was
    ignored = [e.reason for e in events if isinstance(e, TriggerIgnored)]
    assert ignored == ["already recording", "not recording"]
    assert len(segments) == 1 and segments[0].final


def test_post_event_keeps_recording_and_a_new_start_continues_the_incident(small_source):
    source = small_source()
    frames = source.frames()
    recorder, segments, _ = make_recorder(source, 1.0, post_event=2.0)
    feed(recorder, frames, 45)
    recorder.handle_trigger(Trigger(Action.START, "test"))
    feed(recorder, frames, 30)
    recorder.handle_trigger(Trigger(Action.STOP, "test"))
    assert recorder.state is State.FINISHING
    feed(recorder, frames, 30)
    recorder.handle_trigger(Trigger(Action.START, "test"))  # re-triggered during post-event
    assert recorder.state is State.RECORDING
    feed(recorder, frames, 30)
    recorder.handle_trigger(Trigger(Action.STOP, "test"))
    feed(recorder, frames, 2 * FPS + 5)
    assert recorder.state is State.STANDBY
    assert len({s.incident_id for s in segments}) == 1
    recorded = sum(s.frame_count for s in segments)
    assert recorded == 15 + 30 + 30 + 30 + 2 * FPS  # pre-event GOP part + live + 2 s post-event
    check_incident(segments, segments[0].frames[0].seq, segments[-1].frames[-1].seq)


def test_lost_frames_cut_the_segment_and_are_recorded(small_source):
    source = small_source()
    frames = list(source.frames(8 * FPS))
    recorder, segments, events = make_recorder(source, 1.0, segment_seconds=4.0)
    for f in frames[:40]:
        recorder.handle_frame(f)
    recorder.handle_trigger(Trigger(Action.START, "test"))
    for f in frames[40:100] + frames[110:200]:  # ten frames never arrive
        recorder.handle_frame(f)
    recorder.handle_trigger(Trigger(Action.STOP, "test"))
    lost = [e for e in events if isinstance(e, FramesLost)]
    assert [(e.count, e.state) for e in lost] == [(10, State.RECORDING)]
    assert recorder.status().frames_lost == 10 and recorder.status().overrun_alarm
    after_gap = [s for s in segments if s.dropped_frames]
    assert len(after_gap) == 1 and after_gap[0].dropped_frames == 10 + 10  # 10 lost + 10 skipped to the IDR
    assert after_gap[0].frames[0].seq == 120
    for segment in segments:
        assert decode_counters(segment.payload()) == [f.seq for f in segment.frames]


def test_a_refusing_gate_blocks_recording_with_its_reason(small_source):
    source = small_source()
    recorder, segments, events = make_recorder(source, 1.0, gate=lambda: "storage full")
    feed(recorder, source.frames(), 40)
    recorder.handle_trigger(Trigger(Action.START, "button"))
    assert recorder.state is State.STANDBY and not segments
    assert recorder.status().refused_reason == "storage full"
    assert [e.reason for e in events if isinstance(e, TriggerIgnored)] == ["refused: storage full"]


def test_shutdown_closes_the_running_incident(small_source):
    source = small_source()
    frames = source.frames()
    recorder, segments, _ = make_recorder(source, 1.0)
    feed(recorder, frames, 35)
    recorder.handle_trigger(Trigger(Action.START, "test"))
    feed(recorder, frames, 20)
    recorder.shutdown()
    assert recorder.state is State.STANDBY and segments[-1].final
