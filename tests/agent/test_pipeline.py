"""The capture thread never waits for the recorder: a slow sink shows up as a counted overrun alarm."""

import time

from agent.pipeline import RecorderThread
from agent.recorder import Action, FramesLost, Recorder, State, Trigger
from camera.ring import PreEventRing
from camera.decode import decode_frame_numbers as decode_counters


def test_slow_sink_raises_a_counted_overrun_alarm_instead_of_stalling_the_camera(small_source):
    source = small_source(realtime=True, fps=60.0, gop_frames=30, max_frames=300)  # 5 s of video
    segments, lost_events = [], []

    def slow_sink(segment):
        segments.append(segment)
        time.sleep(1.5)  # a sealer far slower than real time

    recorder = Recorder(source.info, PreEventRing(1.0, 16 << 20), 2.0, slow_sink,
                        request_keyframe=source.request_keyframe)
    recorder.subscribe(lambda e: lost_events.append(e) if isinstance(e, FramesLost) else None)
    thread = RecorderThread(recorder, queue_frames=30)  # half a second of buffer
    callback_times = []

    def on_frame(frame):
        t0 = time.perf_counter()
        thread.offer(frame)
        callback_times.append(time.perf_counter() - t0)

    thread.start()
    thread.trigger(Trigger(Action.START, "test"))
    started = time.monotonic()
    source.start(on_frame)
    assert source.wait(timeout=15)
    source_seconds = time.monotonic() - started
    thread.stop(timeout=20)
    assert not thread.is_alive() and thread.fault is None

    # the camera kept its pace: 300 frames at 60 fps in about 5 s, every callback returned at once
    assert source.frames_emitted == 300 and source_seconds < 8.0
    assert max(callback_times) < 0.05
    # and the overrun is visible: counted at the queue, reported by the recorder, raised as an alarm
    assert thread.frames_dropped_at_queue > 0
    assert sum(e.count for e in lost_events) == thread.frames_dropped_at_queue
    assert thread.status.frames_lost == thread.frames_dropped_at_queue
    assert thread.status.overrun_alarm
    # what was recorded is still clean evidence: every segment decodes, the gaps are declared
    assert thread.status.state is State.STANDBY and segments[-1].final
    for segment in segments:
        assert decode_counters(segment.payload()) == [f.seq for f in segment.frames]
    recorded = sum(s.frame_count for s in segments)
    declared = sum(s.dropped_frames for s in segments)
    assert recorded + declared >= 300 - 60 - thread.frames_dropped_at_queue  # nothing vanished undeclared


def test_triggers_are_never_lost_behind_a_full_frame_queue(small_source):
    source = small_source()
    segments = []
    recorder = Recorder(source.info, PreEventRing(1.0, 16 << 20), 2.0, segments.append)
    thread = RecorderThread(recorder, queue_frames=5)
    for frame in source.frames(40):
        thread.offer(frame)  # the queue is full long before the thread runs
    thread.trigger(Trigger(Action.START, "test"))
    thread.start()
    deadline = time.monotonic() + 5
    while thread.status.state is not State.RECORDING and time.monotonic() < deadline:
        time.sleep(0.01)
    assert thread.status.state is State.RECORDING
    thread.stop()
    assert segments and segments[-1].final
    assert not thread.is_alive()  # stop() ended the thread: it does not linger after the pipeline is gone
