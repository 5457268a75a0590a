"""kill -9 in the middle of a recording, then a restart on the same state: the chain explains the cut.

The real agent with the synthetic camera records in a child process and is killed with SIGKILL while
its running segment exists only in RAM. ``bodycam run`` is then started on the same state and spool,
and stopped with SIGTERM. ``bodycam verify`` must report the incident as cut by the restart, with the
restart time and a bound on what was lost, from a signed end marker in the chain, and flag its removal.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evidence import audit
from evidence.audit import verify_log
from evidence.keys import load_device_public_keys
from evidence.verify import parse_time, verify_paths
from tests.support import device_config, wait_for, written

CHILD = Path(__file__).with_name("crash_agent.py")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def agent_config(tmp_path):
    return written(device_config(tmp_path), tmp_path / "agent.toml")




def bodycam(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "agent.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=120, check=False)


@pytest.mark.system
def test_a_kill_mid_recording_yields_a_chain_that_explains_the_cut(agent_config, tmp_path):
    cfg, path = agent_config
    env = dict(os.environ, PYTHONPATH=str(REPO))
    child = subprocess.Popen([sys.executable, str(CHILD), str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=env)
    try:
        line = child.stdout.readline().decode()
        assert line.startswith("SEALED"), child.stderr.read().decode()[-3000:]
        incident = line.split()[1]
        time.sleep(0.5)  # well inside the next segment, which is only in RAM
        killed_at = time.time()
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    spool = Path(cfg.storage.spool_dir)
    devices = load_device_public_keys([tmp_path / "device" / "keys" / "device.pub"])
    assert not verify_paths([spool], devices).ok  # before the restart: an unexplained end

    restart = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--config", str(path)], env=env,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: os.path.exists(cfg.runtime.status_file)
                        and json.loads(Path(cfg.runtime.status_file).read_text()).get("frames_seen", 0) > 0)
        restart.send_signal(signal.SIGTERM)
        assert restart.wait(timeout=30) == 0
    finally:
        if restart.poll() is None:
            restart.kill()
    assert "Traceback" not in restart.stderr.read()

    report = verify_paths([spool], devices)
    assert report.ok, report.lines()
    [cut] = report.cuts
    assert cut.incident_id == incident and cut.reason == "restart"
    assert parse_time(cut.last_frame_time) <= killed_at <= parse_time(cut.restart_time)
    assert cut.lost_up_to_s == pytest.approx(parse_time(cut.restart_time) - parse_time(cut.last_frame_time), abs=1e-3)
    out = bodycam("verify", "--devices", tmp_path / "device" / "keys" / "device.pub", spool)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"CUT  device {cfg.device.id}: incident {incident} cut by device restart at {cut.restart_time}" in out.stdout
    assert f"up to {cut.lost_up_to_s:.1f} s lost" in out.stdout

    key = next(iter(devices.values())).key
    assert verify_log(cfg.storage.audit_log, key).ok
    events = [json.loads(line) for line in Path(cfg.storage.audit_log).read_text().splitlines()]
    cut_line = next(i for i, e in enumerate(events) if e["event"] == audit.INCIDENT_CUT)
    assert events[cut_line]["fields"]["incident_id"] == incident
    later = [e["event"] for e in events[cut_line:]]
    assert audit.AGENT_STARTED in later and audit.SEGMENT_SEALED not in later[:later.index(audit.AGENT_STARTED)]

    marker = spool / f"{cut.stem}.manifest.json"  # removing the marker (and its empty .age) is noticed
    marker.unlink()
    (spool / f"{cut.stem}.age").unlink()
    again = bodycam("verify", "--devices", tmp_path / "device" / "keys" / "device.pub", spool)
    assert again.returncode == 1 and "no final segment" in again.stdout
