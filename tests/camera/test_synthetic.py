import itertools
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from base.errors import CameraUnavailableError
from camera.synthetic import SyntheticSource
from camera.decode import decode_frame_numbers as decode_counters


def nal_types(data: bytes) -> list[int]:
    """NAL unit types in an Annex-B access unit (start codes 00 00 01 / 00 00 00 01)."""
    types, i = [], data.find(b"\x00\x00\x01")
    while i != -1:
        types.append(data[i + 3] & 0x1F)
        i = data.find(b"\x00\x00\x01", i + 3)
    return types


def test_keyframes_every_gop_with_sps_pps_first(small_source):
    frames = list(small_source(gop_frames=15).frames(61))
    assert [f.seq for f in frames] == list(range(61))
    assert [i for i, f in enumerate(frames) if f.keyframe] == [0, 15, 30, 45, 60]
    for f in frames:
        kinds = nal_types(f.data)
        if f.keyframe:
            assert kinds.index(7) < kinds.index(8) < kinds.index(5), kinds  # SPS, PPS, IDR
        else:
            assert 5 not in kinds and 7 not in kinds, kinds


def test_timestamps_follow_frame_rate(small_source):
    frames = list(small_source(fps=25.0).frames(5, start_wall=1000.0))
    assert [f.pts_us for f in frames] == [0, 40_000, 80_000, 120_000, 160_000]
    assert frames[2].wall_time == pytest.approx(1000.08)


def test_every_frame_identifiable_after_decode_from_any_keyframe(small_source):
    frames = list(small_source().frames(75))
    assert decode_counters(b"".join(f.data for f in frames[30:])) == list(range(30, 75))


def test_counter_survives_full_hd_at_target_bitrate():
    source = SyntheticSource(1920, 1080, 30.0, 10_000_000, 30, realtime=False)
    frames = list(source.frames(31))
    assert decode_counters(b"".join(f.data for f in frames)) == list(range(31))


def test_request_keyframe_forces_an_idr(small_source):
    source = small_source(gop_frames=300)
    gen = source.frames(20)
    first = [next(gen) for _ in range(7)]
    source.request_keyframe()
    rest = list(gen)
    assert [f.keyframe for f in first] == [True] + [False] * 6
    assert rest[0].keyframe and 7 in nal_types(rest[0].data)
    assert not any(f.keyframe for f in rest[1:])


def test_replay_loops_a_preencoded_clip_with_fresh_timestamps(small_source):
    source = small_source(replay_seconds=1.0)
    frames = list(source.frames(75))
    assert [f.pts_us for f in frames] == [round(i * 1e6 / 30) for i in range(75)]
    assert frames[30].data == frames[0].data and frames[30].keyframe
    assert decode_counters(b"".join(f.data for f in frames[30:60])) == list(range(30))


def test_realtime_thread_paces_frames_and_stops(small_source):
    source = small_source(realtime=True, fps=30.0, max_frames=None)
    got, enough = [], threading.Event()

    def on_frame(frame):
        got.append(frame)
        if len(got) == 15:
            enough.set()

    source.start(on_frame)
    assert enough.wait(5.0)
    source.stop()
    assert not source.running
    count = len(got)
    span = got[14].wall_time - got[0].wall_time
    assert 0.3 < span < 1.5, span  # 14 frame periods at 30 fps ≈ 0.47 s, generous for a busy CI
    y, u, v = source.preview()  # YUV420 like picamera2's lores stream
    assert y.ndim == 2 and u.shape == v.shape == (y.shape[0] // 2, y.shape[1] // 2)
    assert len(got) == count  # nothing arrives after stop()


class SlowMachineSource(SyntheticSource):
    """Encodes at half the nominal rate, as an emulated Pi manages 18-22 of 30 fps."""

    def _numbered(self, count, start_wall):
        for frame, number in super()._numbered(count, start_wall):
            time.sleep(2.0 / self.info.fps)
            yield frame, number


def test_a_camera_slower_than_its_nominal_rate_stamps_real_time_and_says_so(caplog):
    source = SlowMachineSource(160, 120, 30.0, 300_000, 30, realtime=True)
    got, enough = [], threading.Event()

    def on_frame(frame):
        got.append(frame)
        if len(got) == 40:
            enough.set()

    with caplog.at_level(logging.WARNING, logger="camera.synthetic"):
        source.start(on_frame)
        assert enough.wait(30.0)
        source.stop()
    # the media clock runs with real time, so a segment (and the MP4) lasts as long as was recorded
    pts_span = (got[-1].pts_us - got[0].pts_us) / 1e6
    wall_span = got[-1].wall_time - got[0].wall_time
    assert pts_span == pytest.approx(wall_span, rel=0.05, abs=0.02), (pts_span, wall_span)
    assert all(b.pts_us > a.pts_us for a, b in itertools.pairwise(got))
    assert any("cannot keep up" in r.getMessage() for r in caplog.records)  # and the log says why


def test_replay_clip_is_encoded_outside_this_process():
    """As on a Pi (hardware encoder), the agent's process never loads the encoder for a replayed camera."""
    script = (
        "import sys\n"
        "from camera.synthetic import SyntheticSource\n"
        "src = SyntheticSource(160, 120, 30.0, 200_000, 10, realtime=False, replay_seconds=1.0)\n"
        "frames = list(src.frames(35))\n"
        "assert frames[30].data == frames[0].data\n"
        "print('av' in sys.modules, [p.shape for p in src.preview()] if src.preview() is not None else None)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split(maxsplit=1) == ["False", "[(120, 160), (60, 80), (60, 80)]\n"]


def test_a_replay_never_draws_the_pattern_in_this_process(small_source, monkeypatch):
    """The child draws and encodes the clip. Drawing one whole 1080p pattern here, only for its colour, had
    raised the agent's peak memory by ~57 MB (bench_agent: 148 MB against 92 MB)."""
    import camera.synthetic as synthetic

    def drawn(*args):
        raise AssertionError("a replaying camera drew the test pattern in the agent's process")

    monkeypatch.setattr(synthetic, "TestPattern", drawn)
    source = small_source(replay_seconds=1.0)
    assert len(list(source.frames(5))) == 5
    assert [p.shape for p in source.preview()] == [(120, 160), (60, 80), (60, 80)]


def test_replay_shows_the_clips_pictures_on_the_preview(small_source):
    source = small_source(replay_seconds=1.0)
    seen = set()
    for _ in source.frames(60):
        seen.add(source.preview()[0].tobytes())
    assert len(seen) >= 10  # the mirror keeps moving during replay, as with a live camera


@pytest.mark.parametrize("replay", [0.0, 1.0])
def test_the_preview_carries_the_patterns_colour_to_a_colour_panel(small_source, replay):
    """Off the Pi the synthetic camera feeds the colour mirror as picamera2's lores stream does: the
    pattern's left quarter is tinted (V = 160), so a colour picture of it is redder there than on the right."""
    from ui.picture import picture

    source = small_source(replay_seconds=replay)
    for _ in source.frames(5):
        pass
    rgb = np.asarray(picture(source.preview(), 320, 240, flip=False, colour=True)).astype(int)
    left, right = rgb[:, 10:60], rgb[:, -60:-10]
    assert (left[..., 0] - left[..., 1]).mean() > (right[..., 0] - right[..., 1]).mean() + 20


def test_a_failing_clip_encoder_is_a_clear_camera_error():
    source = SyntheticSource(0, 0, 30.0, 200_000, 10, realtime=False, replay_seconds=1.0)
    with pytest.raises(CameraUnavailableError, match="clip encoder failed after 0 of 30 frames"):
        next(source.frames(1))


def test_a_real_time_replay_starts_its_clock_with_the_first_frame_not_before_the_clip_is_encoded(small_source):
    """The clip takes a while to encode; the frames after it must not come out in a burst stamped milliseconds apart."""
    source = small_source(realtime=True, replay_seconds=1.0, max_frames=10)
    got = []
    source.start(got.append)
    assert source.wait(60)
    source.stop()
    span_us = got[-1].pts_us - got[0].pts_us
    assert len(got) == 10 and span_us >= 9 * 33_333 * 0.5, [f.pts_us for f in got]
