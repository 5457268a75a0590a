"""The picamera2 backend, driven through a fake of picamera2's encoder/Output interface."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import pytest

from agent.config import CameraConfig
from base.errors import CameraError, CameraUnavailableError
from camera.picam import PicameraSource
from camera.source import picamera2_available

try:
    from . import fake_picamera2
except ImportError:  # tests/camera is not a package: pytest put this directory on sys.path
    import fake_picamera2

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def fake():
    """The fake picamera2 with one free camera; whatever the test changed is undone afterwards."""
    fake_picamera2.reset()
    yield fake_picamera2
    fake_picamera2.reset()


@pytest.fixture
def make_source(fake):
    sources = []

    def make(api=fake, **camera):
        config = CameraConfig(**({"width": 640, "height": 480, "fps": 25.0, "bitrate": 2_000_000} | camera))
        source = PicameraSource.from_config(config, picamera2=api)
        sources.append(source)
        return source

    yield make
    for source in sources:
        source.stop()


class Collector:
    """The frame callback: keeps frames and lets a test wait for a condition on them."""

    def __init__(self):
        self.frames = []
        self._changed = threading.Condition()

    def __call__(self, frame):
        with self._changed:
            self.frames.append(frame)
            self._changed.notify_all()

    def wait_for(self, predicate, timeout=3.0):
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self.frames), timeout):
                raise AssertionError(f"timed out; got {len(self.frames)} frames")
            return list(self.frames)


def test_frames_reach_the_callback_with_the_encoders_fields(make_source, fake):
    source, got = make_source(), Collector()
    before = time.time()
    source.start(got)
    got.wait_for(lambda frames: len(frames) >= 10)
    source.stop()
    after = time.time()

    (encoder,) = fake.state.encoders
    frames = got.frames
    assert [f.seq for f in frames] == list(range(len(frames)))
    assert [(f.data, f.keyframe, f.pts_us) for f in frames] == encoder.sent[:len(frames)]
    assert all(type(f.data) is bytes and type(f.pts_us) is int for f in frames)
    assert all(before <= f.wall_time <= after for f in frames)
    assert [f.wall_time for f in frames] == sorted(f.wall_time for f in frames)


def test_keyframes_carry_sps_pps_and_timestamps_are_microseconds(make_source):
    source, got = make_source(fps=25.0, gop_frames=5), Collector()
    source.start(got)
    frames = got.wait_for(lambda frames: len(frames) >= 12)

    assert [f.keyframe for f in frames[:11]] == [i % 5 == 0 for i in range(11)]
    assert all(f.data.startswith(fake_picamera2.SPS + fake_picamera2.PPS) for f in frames if f.keyframe)
    assert [f.pts_us for f in frames[:3]] == [0, 40_000, 80_000]


def test_request_keyframe_forces_an_idr_before_the_gop_ends(make_source, fake):
    source, got = make_source(gop_frames=600), Collector()
    source.start(got)
    got.wait_for(lambda frames: len(frames) >= 3)
    source.request_keyframe()
    frames = got.wait_for(lambda frames: any(f.keyframe for f in frames[1:]))

    assert fake.state.encoders[0].forced == 1
    assert sum(f.keyframe for f in frames) == 2


def test_request_keyframe_on_a_picamera2_without_force_key_frame_warns_once(make_source, fake, caplog):
    old = SimpleNamespace(Picamera2=fake.Picamera2, H264Encoder=fake.OldH264Encoder, Output=fake.Output)
    source, got = make_source(api=old), Collector()
    source.start(got)
    with caplog.at_level(logging.WARNING, logger="camera.picam"):
        source.request_keyframe()
        source.request_keyframe()
    assert len([r for r in caplog.records if "cannot force a keyframe" in r.getMessage()]) == 1
    assert source.running


def test_encoder_and_camera_get_the_configured_settings(make_source, fake):
    source = make_source(width=1920, height=1080, fps=25.0, bitrate=8_000_000, gop_frames=0)
    source.start(Collector())

    (encoder,) = fake.state.encoders
    assert (encoder.bitrate, encoder.repeat, encoder.iperiod, encoder.framerate) == (8_000_000, True, 25, 25.0)
    config = fake.state.cameras_opened[0].camera_config
    assert config["main"]["size"] == (1920, 1080) and config["main"]["format"] == "YUV420"
    assert config["lores"]["size"] == (128, 72) and config["lores"]["format"] == "YUV420"
    assert config["controls"]["FrameDurationLimits"] == (40_000, 40_000)
    assert source.info.as_dict() == {"codec": "h264", "width": 1920, "height": 1080, "fps": 25.0,
                                     "bitrate": 8_000_000, "gop_frames": 25, "source": "picamera2"}


def test_stop_is_idempotent_and_closes_the_camera(make_source, fake):
    source, got = make_source(), Collector()
    source.stop()  # before start: nothing to do
    source.start(got)
    got.wait_for(lambda frames: len(frames) >= 2)
    assert source.running

    source.stop()
    count = len(got.frames)
    source.stop()

    camera = fake.state.cameras_opened[0]
    assert camera.calls.count("stop_recording") == 1 and camera.calls[-1] == "close"
    assert not camera.is_open and not source.running
    time.sleep(5 * fake_picamera2.FRAME_INTERVAL)
    assert len(got.frames) == count  # nothing after stop returned


def test_source_can_start_again_after_stop(make_source, fake):
    source, got = make_source(), Collector()
    source.start(got)
    source.stop()
    source.start(got)
    assert source.running and len(fake.state.cameras_opened) == 2


def test_no_camera_gives_an_actionable_error(make_source, fake):
    fake.state.cameras = []
    with pytest.raises(CameraError, match="no camera detected.*ribbon cable.*rpicam-hello"):
        make_source().start(Collector())


def test_picamera2_init_failure_is_read_from_the_exception_it_hides(make_source, fake, monkeypatch):
    # A camera listed but gone by the time it is opened: picamera2 says only "did not complete".
    monkeypatch.setattr(fake.Picamera2, "global_camera_info", staticmethod(lambda: [{"Id": "x"}]))
    fake.state.cameras = []
    with pytest.raises(CameraError, match="no camera detected"):
        make_source().start(Collector())


def test_busy_camera_gives_an_actionable_error(make_source, fake):
    fake.state.busy = True
    with pytest.raises(CameraError, match="in use by another program") as raised:
        make_source().start(Collector())
    assert "Device or resource busy" in str(raised.value.__cause__.__context__)


def test_a_rejected_configuration_closes_the_camera_and_says_what_to_check(make_source, fake, monkeypatch):
    def invalid(self, camera_config):  # what picamera2 raises when libcamera rejects the configuration
        raise RuntimeError(f"Invalid camera configuration: {camera_config}")

    monkeypatch.setattr(fake.Picamera2, "configure", invalid)
    source = make_source(width=4056, height=2282, fps=60.0)
    with pytest.raises(CameraError, match="would not record 4056x2282 at 60 fps.*camera.width"):
        source.start(Collector())
    assert not fake.state.cameras_opened[0].is_open
    assert not source.running


def test_a_raising_callback_becomes_the_fault_and_stops_delivery(make_source):
    boom = ValueError("queue gone")
    got = Collector()

    def on_frame(frame):
        got(frame)
        if frame.seq == 2:
            raise boom

    source = make_source()
    source.start(on_frame)
    got.wait_for(lambda frames: len(frames) >= 3)
    time.sleep(10 * fake_picamera2.FRAME_INTERVAL)

    assert source.fault is boom
    assert not source.running
    assert len(got.frames) == 3


def test_no_sound_is_asked_for_without_a_microphone_configured(make_source, fake):
    fake.state.microphones = ["default"]
    source, got, sound = make_source(), Collector(), Collector()
    assert source.audio is None
    source.start(got, sound)
    frames = got.wait_for(lambda frames: len(frames) >= 5)
    assert [f.seq for f in frames] == list(range(len(frames)))
    assert fake.state.encoders[-1].audio is False and sound.frames == []


def make_sound_source(fake, device="hw:1,0"):
    camera = CameraConfig(width=640, height=480, fps=25.0, bitrate=2_000_000)
    return PicameraSource.from_config(camera, picamera2=fake, audio_config=_enabled(device))


def _enabled(device):
    """The [audio] section as the agent hands it over."""
    from agent.config import AudioConfig

    return AudioConfig(enabled=True, device=device, bitrate=32_000)


def test_sound_packets_reach_the_recorder_with_picamera2s_timestamps(fake):
    fake.state.microphones = ["hw:1,0"]
    source, got, sound = make_sound_source(fake), Collector(), Collector()
    assert source.audio.codec == "aac" and source.audio.config == b"\x11\x88" and source.audio.sample_rate == 48_000
    try:
        source.start(got, sound)
        packets = sound.wait_for(lambda packets: len(packets) >= 30)
        got.wait_for(lambda frames: len(frames) >= 10)
    finally:
        source.stop()
    encoder = fake.state.encoders[-1]
    assert encoder.audio is True
    assert encoder.audio_input == {"file": "hw:1,0", "format": "alsa"}
    assert encoder.audio_output == {"codec_name": "aac", "rate": 48_000, "layout": "mono", "bit_rate": 32_000}
    sent = encoder.audio_sent[:len(packets)]
    assert [(p.pts_us, p.data) for p in packets] == [(t, bytes(pk)) for t, pk in sent]
    assert [p.seq for p in packets] == list(range(len(packets)))
    assert all(p.duration_us == 21_333 for p in packets)
    assert all(b.pts_us - a.pts_us in (21_333, 21_334) for a, b in zip(packets, packets[1:]))
    assert packets[0].pts_us == int((4800 - 1024) * 1_000_000 / 48_000)  # priming frame moved by audio_sync (-100 ms)
    assert source.audio_fault is None


def test_a_missing_microphone_records_pictures_and_says_why(fake, caplog):
    source, got, sound = make_sound_source(fake, device="hw:9,0"), Collector(), Collector()
    try:
        source.start(got, sound)
        frames = got.wait_for(lambda frames: len(frames) >= 10)
    finally:
        source.stop()
    assert [f.seq for f in frames] == list(range(len(frames)))
    assert sound.frames == []
    assert "hw:9,0" in source.audio_fault and "arecord -l" in source.audio_fault
    assert fake.state.encoders[-1].audio is False  # started again without sound
    assert any("hw:9,0" in r.getMessage() for r in caplog.records)


def test_an_unplugged_microphone_stops_the_sound_and_the_pictures_go_on(fake):
    fake.state.microphones = ["hw:1,0"]
    source, got, sound = make_sound_source(fake), Collector(), Collector()
    try:
        source.start(got, sound)
        sound.wait_for(lambda packets: len(packets) >= 10)
        fake.unplug()
        time.sleep(20 * fake_picamera2.FRAME_INTERVAL)
        heard = len(sound.frames)
        seen = len(got.frames)
        got.wait_for(lambda frames: len(frames) >= seen + 20)
    finally:
        source.stop()
    assert len(sound.frames) == heard  # no more sound, and nothing raised into the pictures' path
    assert source.fault is None


def test_preview_is_the_lores_yuv_planes_without_stride_padding(make_source, fake):
    fake.state.stride_align = 256  # rows padded well past the 128-pixel lores width
    source = make_source(width=640, height=480)
    assert source.preview() is None
    source.start(Collector())
    deadline = time.monotonic() + 3
    while source.preview() is None and time.monotonic() < deadline:
        time.sleep(0.005)

    preview = source.preview()
    assert isinstance(preview, tuple) and len(preview) == 3
    y, u, v = preview
    assert y.dtype.name == u.dtype.name == v.dtype.name == "uint8"
    assert y.shape == (96, 128) and u.shape == v.shape == (48, 64)
    assert (y == fake_picamera2.Y_VALUE).all()
    assert (u == fake_picamera2.U_VALUE).all() and (v == fake_picamera2.V_VALUE).all()


def test_preview_is_updated_at_most_ten_times_a_second(make_source, monkeypatch):
    source = make_source()
    updates = []
    monkeypatch.setattr(source, "_set_preview", updates.append)
    source.start(Collector())
    time.sleep(0.35)  # the fake camera delivers ~100 requests meanwhile
    source.stop()
    assert 1 <= len(updates) <= 5


def test_importing_the_module_does_not_import_picamera2():
    check = "import sys, camera.picam; print(sorted({'picamera2', 'libcamera'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.skipif(picamera2_available(), reason="picamera2 is installed here")
def test_without_picamera2_building_the_real_source_says_how_to_install_it():
    with pytest.raises(CameraUnavailableError, match="apt install python3-picamera2"):
        PicameraSource.from_config(CameraConfig())
