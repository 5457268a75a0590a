"""`bodycam run`: start order, systemd notify/watchdog, SIGTERM, SIGHUP, supervision."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from agent import config
from evidence.audit import verify_log
from evidence.keys import load_device_public_keys
from agent.recorder import Action, Trigger
from agent.runtime import Agent, run_agent
from evidence.verify import verify_paths
from camera.synthetic import SyntheticSource
from comms.uplink import UplinkStatus
from ui.screens import IDENTIFY, screen_for
from tests.support import device_config, wait_for, written


@pytest.fixture
def agent_config(tmp_path):
    cfg = device_config(tmp_path, runtime={"status_file": str(tmp_path / "run" / "status.json"), "stall_seconds": 2.0})
    return written(cfg, tmp_path / "agent.toml")


def public_key(cfg):
    return load_device_public_keys([cfg.evidence.device_key.replace(".key", ".pub")])




def test_service_notifies_systemd_feeds_the_watchdog_and_stops_cleanly_on_sigterm(agent_config, tmp_path):
    cfg, path = agent_config
    sock_path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(15)
    env = dict(os.environ, NOTIFY_SOCKET=sock_path, WATCHDOG_USEC="400000")
    proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--config", str(path)], env=env,
                            stderr=subprocess.PIPE, text=True)
    try:
        messages = []
        while sum("WATCHDOG=1" in m for m in messages) < 3:
            messages.append(sock.recv(4096).decode())
        assert "READY=1" in messages[0]
        assert not any("WATCHDOG=1" in m for m in messages[:1])  # never fed before ready
        status = json.loads(open(cfg.runtime.status_file).read()) if wait_for(
            lambda: os.path.exists(cfg.runtime.status_file)) else None
        assert status and status["state"] == "standby" and status["frames_seen"] > 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()
    assert "Traceback" not in proc.stderr.read()
    assert json.loads(open(cfg.runtime.status_file).read())["state"] == "stopped"
    events = [json.loads(line)["event"] for line in open(cfg.storage.audit_log)]
    assert events[-2:] == ["agent_stopping", "agent_stopped"]
    assert "agent_started" in events
    key = next(iter(public_key(cfg).values())).key
    assert verify_log(cfg.storage.audit_log, key).ok


def test_stopping_during_a_recording_seals_its_last_segment(agent_config):
    cfg, _ = agent_config
    agent = Agent(cfg)
    agent.start()
    try:
        assert wait_for(lambda: agent.recorder_thread.status.ring.seconds_held > 1.0)
        agent.trigger(Trigger(Action.START, "test"))
        assert wait_for(lambda: agent.recorder_thread.status.frames_seen > 150)
    finally:
        agent.stop()
    report = verify_paths([cfg.storage.spool_dir], public_key(cfg))
    assert report.ok, report.lines()
    manifests = [json.loads(p.read_text()) for p in sorted(Path(cfg.storage.spool_dir).glob("*.manifest.json"))]
    assert manifests and manifests[-1]["final"] and manifests[0]["pre_event_frames"] > 0


class DyingSource(SyntheticSource):
    """A camera that fails after a few frames, like a loose ribbon cable."""

    def start(self, on_frame):
        count = [0]

        def deliver(frame):
            count[0] += 1
            if count[0] > 10:
                raise OSError(5, "Input/output error")
            on_frame(frame)

        super().start(deliver)


def test_a_crashing_camera_is_restarted_a_bounded_number_of_times_then_the_agent_exits(agent_config):
    cfg, _ = agent_config
    cfg = config.replace(cfg, "runtime", max_restarts=2)
    built = []

    def factory(camera, audio=None):
        built.append(1)
        return DyingSource(320, 240, 30.0, 300_000, 30, realtime=True)

    result = []
    thread = threading.Thread(target=lambda: result.append(run_agent(cfg, None, source_factory=factory)))
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert result == [1]  # non-zero: systemd restarts the service
    assert len(built) == 3  # the first camera and two restarts
    status = json.loads(open(cfg.runtime.status_file).read())
    assert status["state"] == "stopped" and status["exit_code"] == 1


def test_sighup_applies_a_new_window_and_refuses_a_bad_file(agent_config):
    cfg, path = agent_config
    proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--config", str(path)],
                            stderr=subprocess.PIPE, text=True)
    try:
        def status():
            try:
                return json.loads(open(cfg.runtime.status_file).read())
            except (OSError, ValueError):
                return {}

        assert wait_for(lambda: status().get("frames_seen", 0) > 0, 20)
        path.write_text(path.read_text().replace("pre_event_seconds = 2.0", "pre_event_seconds = 5.0"))
        proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: status().get("pre_event", {}).get("window_seconds") == 5.0, 10)
        path.write_text(path.read_text().replace("pre_event_seconds = 5.0", "pre_event_seconds = 500.0"))
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=15)
        assert rc == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    err = proc.stderr.read()
    assert "reload refused, the running configuration stays" in err and "pre_event_seconds = 500.0" in err
    changes = [json.loads(line)["fields"] for line in open(cfg.storage.audit_log)
               if json.loads(line)["event"] == "config_changed"]
    assert len(changes) == 2 and "rejected" in changes[1]


def test_validate_config_checks_and_exits(agent_config, tmp_path):
    _, path = agent_config
    ok = subprocess.run([sys.executable, "-m", "agent.cli", "run", "--config", str(path), "--validate-config"],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ": OK" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text("[camera]\nfps = -1\n")
    proc = subprocess.run([sys.executable, "-m", "agent.cli", "run", "--config", str(bad), "--validate-config"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "camera.fps = -1.0 is out of range" in proc.stderr


def test_remote_settings_reach_the_display_and_identify_blinks_the_led_and_the_display(agent_config):
    cfg, _ = agent_config
    agent = Agent(cfg)
    agent.start()
    try:
        assert agent._view.language == "de"
        assert agent._apply_setting("display", "language", "en", "test") is None
        assert agent._view.language == "en" and agent.cfg.display.language == "en"
        assert not agent.indicators._alerting() or agent.alerts
        agent.refresh_alerts()
        assert agent._health.link_up is None  # uploading switched off: no sync icon at all
        agent.uplink = SimpleNamespace(status=UplinkStatus(link_up=True))
        agent.refresh_alerts()
        assert agent._health.link_up is True and agent._view().link_up is True
        agent.uplink = None
        assert agent._view().identify is None
        agent._identify(2)
        assert agent.indicators._alerting()
        assert agent._view().identify == cfg.device.id and screen_for(agent._view()) == IDENTIFY
        assert agent._apply_setting("recording", "pre_event_seconds", 1.5, "test") is None
        assert wait_for(lambda: agent.recorder_thread.status.ring.window_seconds == 1.5)
        assert "restart" in agent._apply_setting("camera", "fps", 25, "test")
    finally:
        agent.stop()


def test_a_device_not_yet_enrolled_records_and_spools_and_shows_the_uplink_fault(agent_config, tmp_path):
    cfg, _ = agent_config
    cfg = config.replace(cfg, "uplink", enabled=True, receipt_key=str(tmp_path / "missing" / "receipt.pub"))
    agent = Agent(cfg)
    agent.start()
    try:
        assert agent.uplink is None and agent._link_fault
        agent.trigger(Trigger(Action.START, "test"))
        assert wait_for(lambda: agent.recorder_thread.status.frames_seen > 120)
        status = agent.refresh_alerts()
        assert agent._health.link_up is False  # the officer's sync icon: crossed out
        assert "uplink" in status.faults
        assert "upload_failing" in [a.code for a in status.alerts]
        assert agent.supervise() is None  # the agent keeps running; it retries the link every minute
    finally:
        agent.stop()
    assert list(Path(cfg.storage.spool_dir).glob("*.age"))  # the evidence is on the card


def read_status(cfg):
    try:
        return json.loads(Path(cfg.runtime.status_file).read_text())
    except (OSError, ValueError):
        return {}


def test_a_second_agent_on_the_same_state_directory_refuses_to_start(agent_config):
    cfg, path = agent_config
    first = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--config", str(path)],
                             stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: read_status(cfg).get("frames_seen", 0) > 0, 30)
        second = subprocess.run([sys.executable, "-m", "agent.cli", "run", "--config", str(path)],
                                capture_output=True, text=True, timeout=30, check=False)
        assert second.returncode == 1
        assert f"already running (PID {first.pid})" in second.stderr and cfg.evidence.state_dir in second.stderr
        assert "Traceback" not in second.stderr
        assert first.poll() is None and read_status(cfg)["state"] == "standby"  # the first runs on, undisturbed
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=20) == 0
    finally:
        if first.poll() is None:
            first.kill()
    events = [json.loads(line)["event"] for line in Path(cfg.storage.audit_log).read_text().splitlines()]
    assert events.count("agent_started") == 1  # one writer: the audit log did not fork
    assert verify_log(cfg.storage.audit_log, next(iter(public_key(cfg).values())).key).ok


#: `bodycam run` on a card that refuses every segment write (as after a remount read-only), recording
#: from the start, as if the officer had pressed the button.
REFUSING_CARD = """
import errno, sys
from agent import runtime
from evidence import spool
from agent.diskspace import storage_error
from agent.recorder import Action, Trigger

def refuse(self, stem):
    raise storage_error(OSError(errno.EROFS, "Read-only file system"), self.directory / stem, "writing " + stem)

spool.Spool.begin = refuse
start = runtime.Agent.start

def start_recording(self):
    start(self)
    self.trigger(Trigger(Action.START, "button"))

runtime.Agent.start = start_recording
from agent.cli import main
sys.exit(main(sys.argv[1:]))
"""


def recorder_stalled(cfg, seconds=4.0) -> bool:
    """True when the recorder took in no frame for ``seconds`` (status.json is rewritten every 2 s)."""
    before = read_status(cfg).get("frames_seen")
    time.sleep(seconds)
    return before is not None and read_status(cfg).get("frames_seen") == before


@pytest.mark.system
def test_sigterm_ends_the_agent_within_its_stop_timeout_when_the_card_keeps_refusing(agent_config):
    cfg, path = agent_config
    proc = subprocess.Popen([sys.executable, "-c", REFUSING_CARD, "run", "--config", str(path)],
                            stderr=subprocess.PIPE, text=True)
    try:
        # the sealer retries, its queue fills and the recorder waits on it: frames stop being taken in
        assert wait_for(lambda: "sealer" in read_status(cfg).get("faults", {}), 60)
        assert wait_for(lambda: recorder_stalled(cfg), 60)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=80)  # TimeoutStopSec is 90: systemd would have to SIGKILL a hung agent
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    err = proc.stderr.read()
    assert code == 1, err[-3000:]  # not a clean stop: evidence was lost
    assert "Traceback" not in err and "is lost" in err
    lines = [json.loads(line) for line in Path(cfg.storage.audit_log).read_text().splitlines()]
    lost = [line["fields"] for line in lines if line["event"] == "segment_lost"]
    assert lost and all(f["reason"] for f in lost)
    assert lines[-1]["event"] == "agent_stopped" and lines[-1]["fields"]["lost"] == len(lost)
    assert verify_log(cfg.storage.audit_log, next(iter(public_key(cfg).values())).key).ok
    assert read_status(cfg)["exit_code"] == 1
