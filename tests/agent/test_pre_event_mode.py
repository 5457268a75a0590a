"""When the pre-event ring fills (recording.pre_event_mode), proven with the numbers burnt into the pictures.

Every frame of the synthetic camera carries its number in its pixels; the segments are decoded and the
numbers read back, so "in the recording" means what a court would see, not what a counter says.
"""

from __future__ import annotations

import gc
import json
import tracemalloc

import pytest

from agent.recorder import Action, Recorder, State, Trigger
from camera.decode import decode_frame_numbers
from camera.ring import PreEventRing

FPS = 30


def make_recorder(source, mode, pre_event=5.0):
    segments = []
    recorder = Recorder(source.info, PreEventRing(pre_event, 64 << 20), 2.0, segments.append, 0.0,
                        source.request_keyframe, pre_event_mode=mode)
    return recorder, segments


def feed(recorder, frames, n):
    for _ in range(n):
        recorder.handle_frame(next(frames))


def act(recorder, action):
    recorder.handle_trigger(Trigger(action, "test"))


def decoded(segments) -> list[int]:
    """The burnt-in numbers of every picture of every segment, in order; each segment decodes alone."""
    numbers = []
    for segment in segments:
        got = decode_frame_numbers(segment.payload())
        assert got == [f.seq for f in segment.frames]  # the number in the picture is the frame's own
        numbers += got
    return numbers


def pre_event_numbers(segments) -> list[int]:
    return decoded(segments)[:sum(s.pre_event_frames for s in segments)]


def test_announced_the_mirror_frames_are_the_pre_event_part_and_standby_frames_are_in_no_segment(small_source):
    source = small_source()
    frames = source.frames()
    recorder, segments = make_recorder(source, "announced")
    feed(recorder, frames, 95)  # standby without the mirror, ending mid-GOP
    assert len(recorder.ring) == 0 and recorder.ring.memory_bytes == 0
    act(recorder, Action.MIRROR_TOGGLE)  # the officer's short press: the person sees themselves
    mirror_on = 95
    feed(recorder, frames, 2 * FPS)
    act(recorder, Action.START)
    start = mirror_on + 2 * FPS
    feed(recorder, frames, 2 * FPS)
    act(recorder, Action.STOP)
    assert recorder.state is State.MIRROR

    # Everything the mirror showed before the start, from the very frame the mirror went on (its keyframe
    # was asked for), is the pre-event part; nothing from before the mirror is anywhere.
    assert pre_event_numbers(segments) == list(range(mirror_on, start))
    assert decoded(segments) == list(range(mirror_on, start + 2 * FPS))
    assert all(s.pre_event_mode == "announced" for s in segments)


def test_announced_a_recording_from_standby_has_no_pre_event_part_even_after_an_earlier_announcement(small_source):
    source = small_source()
    frames = source.frames()
    recorder, segments = make_recorder(source, "announced")
    feed(recorder, frames, 40)
    act(recorder, Action.MIRROR_ON)
    feed(recorder, frames, 50)  # shown on the mirror …
    assert len(recorder.ring) == 50
    act(recorder, Action.MIRROR_OFF)  # … but the announcement ended before the recording
    assert len(recorder.ring) == 0
    feed(recorder, frames, 70)
    act(recorder, Action.START)
    first_recorded = 160
    feed(recorder, frames, 3 * FPS)
    act(recorder, Action.STOP)

    assert sum(s.pre_event_frames for s in segments) == 0
    numbers = decoded(segments)
    assert numbers == list(range(first_recorded, first_recorded + 3 * FPS))  # starts at the trigger itself
    assert not set(range(first_recorded)) & set(numbers)  # no frame from before the trigger, mirror or not


def test_standby_mode_keeps_filling_across_the_mirror(small_source):
    source = small_source()
    frames = source.frames()
    recorder, segments = make_recorder(source, "standby", pre_event=2.0)
    feed(recorder, frames, 3 * FPS)
    act(recorder, Action.MIRROR_ON)
    feed(recorder, frames, 10)
    act(recorder, Action.MIRROR_OFF)
    assert len(recorder.ring) > 2 * FPS - FPS  # today's behaviour: the mirror changes nothing
    feed(recorder, frames, 20)
    act(recorder, Action.START)
    feed(recorder, frames, FPS)
    act(recorder, Action.STOP)
    pre = pre_event_numbers(segments)
    assert pre[-1] == 3 * FPS + 29 and pre[0] < 3 * FPS  # standby, mirror and standby again
    assert segments[0].pre_event_mode == "standby"


@pytest.mark.parametrize("mode, window", [("off", 5.0), ("standby", 0.0)])
def test_off_or_a_zero_window_keeps_nothing_and_the_manifest_says_off(small_source, mode, window):
    source = small_source()
    frames = source.frames()
    recorder, segments = make_recorder(source, mode, pre_event=window)
    act(recorder, Action.MIRROR_ON)
    feed(recorder, frames, 50)
    assert len(recorder.ring) == 0 and not recorder.status().pre_recording
    act(recorder, Action.START)
    feed(recorder, frames, FPS)
    act(recorder, Action.STOP)
    assert decoded(segments) == list(range(50, 50 + FPS))
    assert segments[0].pre_event_mode == "off"


def _ring_and_heap(recorder):
    gc.collect()
    return recorder.ring.memory_bytes, tracemalloc.get_traced_memory()[0]


def test_switching_the_mirror_off_empties_the_ring_memory_measured(small_source):
    source = small_source(width=320, height=240, bitrate=2_000_000)
    frames = source.frames()
    recorder, _ = make_recorder(source, "announced", pre_event=10.0)
    feed(recorder, frames, FPS)  # the encoder's own buffers exist before the measurement starts
    tracemalloc.start()
    act(recorder, Action.MIRROR_ON)
    try:
        before_ring, before_heap = _ring_and_heap(recorder)
        feed(recorder, frames, 6 * FPS)
        full_ring, full_heap = _ring_and_heap(recorder)
        act(recorder, Action.MIRROR_OFF)
        empty_ring, empty_heap = _ring_and_heap(recorder)
    finally:
        tracemalloc.stop()
    assert before_ring == 0 and full_ring > 200_000  # six seconds of pictures held
    assert full_heap - before_heap >= 0.9 * full_ring  # the ring's figure is memory the process really held
    assert empty_ring == 0 and recorder.status().ring.memory_bytes == 0
    assert full_heap - empty_heap >= 0.9 * full_ring  # and it is given back when the mirror goes off
    assert empty_heap - before_heap < 0.1 * full_ring  # measured: 1.57 MB held, 0.13 MB left (the encoder)


def test_the_status_says_when_pre_recording_is_active(small_source):
    source = small_source()
    recorder, _ = make_recorder(source, "announced")
    assert recorder.status().pre_event_mode == "announced" and not recorder.status().pre_recording
    act(recorder, Action.MIRROR_ON)
    assert recorder.status().pre_recording
    act(recorder, Action.START)
    assert not recorder.status().pre_recording  # recording, not pre-recording
    act(recorder, Action.STOP)
    assert recorder.status().pre_recording  # back on the mirror
    recorder.reconfigure(5.0, 0.0, "off")
    assert not recorder.status().pre_recording


def test_a_reload_to_a_stricter_mode_empties_the_ring_at_once(small_source):
    source = small_source()
    frames = source.frames()
    recorder, _ = make_recorder(source, "standby")
    feed(recorder, frames, 2 * FPS)
    assert len(recorder.ring) > 0
    recorder.reconfigure(5.0, 0.0, "announced")  # standby state: no longer allowed to hold anything
    assert len(recorder.ring) == 0 and recorder.ring.memory_bytes == 0
    feed(recorder, frames, FPS)
    assert len(recorder.ring) == 0
    with pytest.raises(ValueError, match="not one of off, announced, standby"):
        recorder.reconfigure(5.0, 0.0, "always")


def test_the_agent_fills_the_ring_only_on_the_mirror_and_a_reload_switches_the_mode(tmp_path):
    from agent import config
    from agent.runtime import Agent
    from tests.support import device_config, wait_for

    cfg = device_config(tmp_path, recording={"pre_event_mode": "announced"})
    agent = Agent(cfg, officer_ui=False)
    agent.start()
    try:
        assert wait_for(lambda: agent.recorder_thread.status.frames_seen > 15)
        assert agent.status().pre_event.memory_bytes == 0  # standby without the mirror: nothing held
        agent.trigger(Trigger(Action.MIRROR_ON, "test"))
        assert wait_for(lambda: agent.status().pre_event.memory_bytes > 0)
        assert agent.recorder_thread.status.pre_recording
        assert agent.reload(config.replace(cfg, "recording", pre_event_mode="off")) == []  # no restart needed
        assert wait_for(lambda: agent.recorder_thread.status.pre_event_mode == "off")
        assert agent.status().pre_event.memory_bytes == 0 and not agent.recorder_thread.status.pre_recording
    finally:
        agent.stop()
    lines = [json.loads(line) for line in open(cfg.storage.audit_log)]
    [started] = [line["fields"] for line in lines if line["event"] == "agent_started"]
    assert (started["profile"], started["pre_event_mode"]) == ("custom", "announced")
    [changed] = [line["fields"] for line in lines if line["event"] == "config_changed"]
    assert "recording.pre_event_mode" in changed["applied"]
