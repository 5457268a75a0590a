"""The agent with sound switched on: segments with both tracks, status and telemetry say so, faults show."""

import json
from pathlib import Path

from agent import config
from agent.recorder import Action, Trigger
from agent.runtime import Agent
from camera.synthetic import SyntheticSource
from evidence.verify import verify_paths

from test_runtime import agent_config, public_key, wait_for  # noqa: F401 (fixture)


def with_sound(cfg):
    """[audio] enabled = true, bitrate = 32000, validated like the file."""
    return config.replace(cfg, "audio", enabled=True, bitrate=32_000)


def test_an_agent_with_sound_seals_segments_with_both_tracks_and_says_so(agent_config):
    cfg = with_sound(agent_config[0])
    agent = Agent(cfg)
    agent.start()
    try:
        assert agent.source.audio is not None
        assert wait_for(lambda: agent.recorder_thread.status.ring.seconds_held > 1.0)
        assert wait_for(lambda: agent.recorder_thread.status.audio_packets_seen > 20)
        agent.trigger(Trigger(Action.START, "test"))
        assert wait_for(lambda: agent.recorder_thread.status.frames_seen > 150, timeout=20)
        status = agent.refresh_alerts()
        telemetry = agent.telemetry()
        view = agent._view()
    finally:
        agent.stop()
    assert status.sound == "on" and "microphone" not in status.faults
    assert view.state.recording and view.sound  # the recording screen shows the microphone mark
    assert telemetry["recorder"]["sound"] == "on"
    report = verify_paths([cfg.storage.spool_dir], public_key(cfg))
    assert report.ok, report.lines()
    manifests = [json.loads(p.read_text()) for p in sorted(Path(cfg.storage.spool_dir).glob("*.manifest.json"))]
    assert manifests and all(m["format"] == "bodycam-segment/2" for m in manifests)
    assert manifests[0]["audio"]["codec"] == "aac" and all(m["audio_packets"] > 0 for m in manifests)


class NoMicrophoneSource(SyntheticSource):
    """A camera whose microphone could not be opened: pictures, no sound, the reason in audio_fault."""

    def start(self, on_frame, on_audio=None):
        self.audio_fault = "the microphone 'hw:9,0' cannot be opened (No such device)"
        super().start(on_frame)


def test_a_missing_microphone_is_an_alert_and_the_pictures_are_recorded(agent_config):
    cfg = with_sound(agent_config[0])

    def factory(camera, audio):
        return NoMicrophoneSource.from_config(camera, audio)

    agent = Agent(cfg, factory)
    agent.start()
    try:
        assert wait_for(lambda: agent.recorder_thread.status.frames_seen > 30)
        status = agent.refresh_alerts()
        telemetry = agent.telemetry()
        view = agent._view()
    finally:
        agent.stop()
    assert not view.sound  # no microphone mark while no sound is recorded
    assert status.sound == "fault" and "hw:9,0" in status.faults["microphone"]
    assert "audio_fault" in [a.code for a in status.alerts]
    assert telemetry["recorder"]["sound"] == "fault"
    assert "audio_fault" in [a["code"] for a in telemetry["alerts"]]


def test_without_sound_the_status_says_off_and_segments_stay_pictures_only(agent_config):
    cfg = agent_config[0]
    agent = Agent(cfg)
    agent.start()
    try:
        assert agent.source.audio is None
        assert wait_for(lambda: agent.recorder_thread.status.ring.seconds_held > 1.0)
        agent.trigger(Trigger(Action.START, "test"))
        assert wait_for(lambda: agent.recorder_thread.status.frames_seen > 90, timeout=20)
        status = agent.refresh_alerts()
        view = agent._view()
    finally:
        agent.stop()
    assert view.state.recording and not view.sound  # no microphone mark
    assert status.sound == "off" and agent.recorder_thread.status.audio_packets_seen == 0
    manifests = [json.loads(p.read_text()) for p in sorted(Path(cfg.storage.spool_dir).glob("*.manifest.json"))]
    assert manifests and all(m["format"] == "bodycam-segment/1" for m in manifests)


def _fake_picamera2():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "camera"))
    import fake_picamera2

    return fake_picamera2


def test_the_picamera2_adapter_feeds_the_recorder_sound_and_a_missing_microphone_is_an_alert(agent_config):
    """Through the real adapter and the fake picamera2: packets reach the recorder at picamera2's
    timestamps; without the microphone the alert shows and the pictures are recorded."""
    from camera.picam import PicameraSource

    fake = _fake_picamera2()
    for microphones, expect_sound in ((["hw:1,0"], True), ([], False)):
        fake.reset()
        fake.state.microphones = microphones
        cfg = config.replace(config.replace(agent_config[0], "audio", enabled=True, device="hw:1,0"),
                             "camera", backend="picamera2", width=640, height=480)
        agent = Agent(cfg, lambda camera, audio: PicameraSource.from_config(camera, picamera2=fake,
                                                                            audio_config=audio))
        agent.start()
        try:
            assert wait_for(lambda: agent.recorder_thread.status.frames_seen > 100)
            if expect_sound:
                assert wait_for(lambda: agent.recorder_thread.status.audio_packets_seen > 50)
            status = agent.refresh_alerts()
        finally:
            agent.stop()
            encoder = fake.state.encoders[-1]
            fake.reset()
        sent = [t for t, _ in encoder.audio_sent]
        if expect_sound:
            assert status.sound == "on" and "audio_fault" not in [a.code for a in status.alerts]
            recorder = agent.recorder_thread.recorder
            assert recorder.audio_packets_seen <= len(sent) and recorder.audio_packets_lost == 0
            frames, audio = recorder.ring.drain()  # standby: the pre-event ring holds them, on one clock
            assert audio and [p.pts_us for p in audio] == sent[audio[0].seq:audio[-1].seq + 1]
            assert audio[1].pts_us >= frames[0].pts_us > audio[0].pts_us  # from the oldest picture, one pre-roll
        else:
            assert sent == [] and status.sound == "fault"
            assert "hw:1,0" in status.faults["microphone"] and "audio_fault" in [a.code for a in status.alerts]
            assert agent.recorder_thread.status.frames_seen > 100  # the pictures went on
