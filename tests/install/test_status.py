"""bodycam status and the status document the runtime writes (agent.status, /run/bodycam/status.json):
the document round-trips through the file of a real running agent, and the command reads it."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from agent import doctor_cli
from agent.status import (
    SCHEMA,
    AuditHead,
    Backlog,
    ChainHead,
    PreEvent,
    StatusAlert,
    StatusDocument,
    StatusDocumentError,
    Storage,
)
from agent.statusfile import StatusFileError, read_status, write_status
from comms.uplink import UplinkStatus

from .conftest import add_segment
from tests.support import wait_for

NOW = 1_764_000_000.0

#: A recording agent's document, every field as Agent.status() fills it.
RUNNING = StatusDocument(
    time=NOW - 1, version="0.1.0", device="cam-0042", site="musterstadt", state="recording",
    incident_id="inc-7", recording_since=NOW - 90, frames_seen=2700, frames_lost=3,
    pre_event=PreEvent(seconds_held=30.0, memory_bytes=1 << 20, window_seconds=30.0),
    storage=Storage(level="ok", free_bytes=5 << 30, total_bytes=30 << 30,
                    reason="storage ok: 5120 MiB free of 30720 MiB on /var/lib/bodycam/spool", path="/x"),
    backlog=Backlog(segments=4, bytes=12 << 20, oldest_age_s=300.0), sealed=9,
    audit_head=AuditHead(seq=12, hash="ab"), chain_head=ChainHead(seq=9, manifest_sha256="cd"),
    restarts={"camera": 0}, broker="mqtt.musterstadt.de:8883",
    uplink=UplinkStatus(state="sending", link_up=True, last_receipt_time=NOW - 30))


def args_for(device, **kw) -> argparse.Namespace:
    return argparse.Namespace(**({"config": str(device.config), "file": str(device.root / "status.json"),
                                  "json": False} | kw))


def stopped(age_s: float, exit_code: int) -> StatusDocument:
    return StatusDocument(time=NOW - age_s, version="0.1.0", device="cam-0042", site="musterstadt",
                          state="stopped", exit_code=exit_code)


# --- the document and its file ----------------------------------------------------------------------

def test_reads_what_the_runtime_writes(tmp_path):
    from agent.runtime import _write_status_safely  # exactly the runtime's writer

    path = tmp_path / "run" / "status.json"  # the runtime creates the directory
    _write_status_safely(str(path), RUNNING)
    status = read_status(path, now=NOW)
    assert status.doc == RUNNING and status.running and status.age_s == pytest.approx(1.0)
    assert json.loads(path.read_text())["schema"] == SCHEMA
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["status.json"]  # no temporary file left


def test_stale_after_15_s(tmp_path):
    path = tmp_path / "status.json"
    write_status(dataclasses.replace(RUNNING, time=NOW - 16), path)
    assert read_status(path, now=NOW).stale
    write_status(dataclasses.replace(RUNNING, time=NOW - 14), path)
    assert not read_status(path, now=NOW).stale


def test_stopped_agent(tmp_path):
    path = tmp_path / "status.json"
    write_status(stopped(1, 1), path)
    status = read_status(path, now=NOW)
    assert status.stopped and not status.running and status.doc.exit_code == 1


def test_absent_file_means_not_running(tmp_path):
    assert read_status(tmp_path / "status.json") is None


def test_keys_of_a_newer_agent_are_ignored(tmp_path):
    path = tmp_path / "status.json"
    path.write_text(json.dumps(RUNNING.as_json() | {"a_key_from_the_future": {"ignored": True}}))
    assert read_status(path, now=NOW).doc == RUNNING


@pytest.mark.parametrize("text, words", [
    ("{not json", "not valid JSON"),
    ('{"state": "standby"}', "time is missing"),
    ('{"schema": 2, "time": 1}', "schema 2"),
    ('{"time": "yesterday", "version": "1", "device": "d", "site": "s", "state": "standby"}',
     "time = 'yesterday' is not a float"),
    ('{"time": 1, "version": "1", "device": "d", "site": "s", "state": "standby", "uplink": {"link_up": "yes"}}',
     "uplink.link_up = 'yes' is not a bool"),
    ('[]', "the document must be an object"),
])
def test_bad_status_files(tmp_path, text, words):
    path = tmp_path / "status.json"
    path.write_text(text)
    with pytest.raises(StatusFileError, match=words):
        read_status(path)


def test_a_document_names_its_missing_part():
    with pytest.raises(StatusDocumentError, match="backlog.segments is missing"):
        StatusDocument.from_json(RUNNING.as_json() | {"backlog": {"bytes": 0, "oldest_age_s": None}})


def test_unreadable_file_says_sudo(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    path = tmp_path / "status.json"
    path.write_text("{}")
    path.chmod(0)
    with pytest.raises(StatusFileError, match="sudo"):
        read_status(path)


# --- bodycam status ------------------------------------------------------------------------------------

def test_status_of_a_running_agent(device, capsys):
    write_status(RUNNING, device.root / "status.json")
    assert doctor_cli.cmd_status(args_for(device), now=NOW) == 0
    assert capsys.readouterr().out.splitlines() == [
        "agent:   running, version 0.1.0, device musterstadt/cam-0042",
        "state:   RECORDING for 90 s (incident inc-7)",
        "camera:  2700 frame(s) seen, 3 lost",
        "policy:  legal profile custom; pre-event standby, 30 s window",
        "storage: storage ok: 5120 MiB free of 30720 MiB on /var/lib/bodycam/spool",
        "backlog: 4 segment(s), 12.0 MiB waiting for the back office, oldest 5 min",
        "uplink:  connected to mqtt.musterstadt.de:8883, state sending, last receipt 30 s ago",
    ]


def test_the_profile_and_an_active_pre_event_window_are_shown(device, capsys):
    doc = dataclasses.replace(RUNNING, state="mirror", profile="nrw",
                              pre_event=PreEvent(12.5, 1 << 20, 30.0, mode="announced", active=True))
    write_status(doc, device.root / "status.json")
    assert doctor_cli.cmd_status(args_for(device), now=NOW) == 0
    assert "policy:  legal profile nrw; pre-event announced, 30 s window, holding 12.5 s in RAM" in \
        capsys.readouterr().out.splitlines()


def test_faults_alerts_and_refusals_are_shown(device, capsys):
    doc = dataclasses.replace(
        RUNNING, state="standby", recording_since=None, faults={"camera": "no frames for 5 s"},
        refused_reason="storage critical", overrun_alarm=True,
        alerts=(StatusAlert("camera_fault", "critical", "camera fault: no frames for 5 s"),),
        uplink=UplinkStatus(state="receiver_silent", fault="the receiver does not answer"))
    write_status(doc, device.root / "status.json")
    doctor_cli.cmd_status(args_for(device), now=NOW)
    out = capsys.readouterr().out.splitlines()
    assert "state:   STANDBY (incident inc-7); recording refused: storage critical" in out
    assert "camera:  2700 frame(s) seen, 3 lost (OVERRUN)" in out
    assert ("uplink:  NOT connected to mqtt.musterstadt.de:8883, state receiver_silent; "
            "the receiver does not answer") in out
    assert "FAULT:   camera: no frames for 5 s" in out
    assert "ALERT:   camera fault: no frames for 5 s (critical)" in out


@pytest.mark.parametrize("broker, uplink, line", [
    (None, None, "uplink:  off (uplink.enabled = false): segments stay on the card"),
    ("mqtt.musterstadt.de:8883", None, "uplink:  NOT connected to mqtt.musterstadt.de:8883"),
])
def test_uplink_off_or_not_started(device, capsys, broker, uplink, line):
    write_status(dataclasses.replace(RUNNING, broker=broker, uplink=uplink), device.root / "status.json")
    doctor_cli.cmd_status(args_for(device), now=NOW)
    assert line in capsys.readouterr().out.splitlines()


def test_status_json_is_the_document(device, capsys):
    write_status(RUNNING, device.root / "status.json")
    assert doctor_cli.cmd_status(args_for(device, json=True), now=NOW) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc.pop("running") is True and doc.pop("age_s") == 1.0
    assert StatusDocument.from_json(doc) == RUNNING


def test_status_file_named_by_the_config(device, capsys):
    path = device.root / "elsewhere.json"
    with device.config.open("a") as fh:
        fh.write(f'[runtime]\nstatus_file = "{path}"\n')
    write_status(RUNNING, path)
    assert doctor_cli.cmd_status(args_for(device, file=None), now=NOW) == 0


def test_stopped_agent_says_its_exit_code(device, capsys):
    write_status(stopped(60, 1), device.root / "status.json")
    assert doctor_cli.cmd_status(args_for(device), now=NOW) == 1
    assert "agent:   stopped 60 s ago (exit code 1)" in capsys.readouterr().out


def test_not_running_shows_the_spools_backlog(device, capsys):
    add_segment(device.spool, 1, age_s=120)
    add_segment(device.spool, 2, receipt=True)
    assert doctor_cli.cmd_status(args_for(device)) == 1
    out = capsys.readouterr().out
    assert "agent:   not running (no status file" in out
    assert "backlog: 1 segment(s)" in out


def test_hung_agent(device, capsys):
    write_status(dataclasses.replace(RUNNING, time=time.time() - 300), device.root / "status.json")
    assert doctor_cli.cmd_status(args_for(device, json=True)) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["running"] is False and "not responding" in doc["reason"] and doc["backlog"]["segments"] == 0


def test_unreadable_status_is_one_sentence(device, capsys):
    (device.root / "status.json").write_text("{")
    assert doctor_cli.cmd_status(args_for(device)) == 1
    assert capsys.readouterr().err.startswith("bodycam: ")


# --- against a real running agent -------------------------------------------------------------------

@pytest.fixture
def running_agent(tmp_path):
    """A real Agent (synthetic camera) whose uplink is connected to a real local mosquitto and receiver,
    with one real alert raised (warn_free_mib above the free space); run_agent writes its status file."""
    from agent import config
    from agent.demo import prepare_workdir
    from agent.runtime import run_agent
    from backoffice.localoffice import LocalBackOffice

    from .conftest import need_tool

    need_tool("mosquitto", "mosquitto")
    cfg = prepare_workdir(config.replace(config.Config(), "device", id="cam-0042", site="musterstadt"), tmp_path)
    office = LocalBackOffice(tmp_path / "office", [Path(cfg.evidence.device_key).with_suffix(".pub")]).start()
    try:
        mqtt = office.device_settings("cam-0042")
        cfg = config.replace(cfg, "mqtt", **dataclasses.asdict(mqtt))
        cfg = config.replace(cfg, "uplink", enabled=True, receipt_key=str(office.receipt_pub))
        cfg = config.replace(cfg, "commands", enabled=False)
        cfg = config.replace(cfg, "camera", backend="synthetic", width=320, height=240)
        cfg = config.replace(cfg, "controls", pin_factory="mock")
        cfg = config.replace(cfg, "storage", warn_free_mib=1_048_576.0, critical_free_mib=1.0)
        cfg = config.replace(cfg, "runtime", status_file=str(tmp_path / "run" / "status.json"))
        path = tmp_path / "agent.toml"
        path.write_text(config.dumps(cfg))
        stop = threading.Event()
        runner = threading.Thread(target=run_agent, args=(cfg, str(path), stop), name="AgentUnderTest")
        runner.start()
        try:
            status_file = Path(cfg.runtime.status_file)
            assert wait_for(lambda: _connected_with_alerts(status_file), 30), \
                status_file.read_text() if status_file.exists() else "no status file"
            yield SimpleNamespace(config=path, status_file=status_file, broker=f"127.0.0.1:{mqtt.port}",
                                  stop=lambda: (stop.set(), runner.join(60)))
        finally:
            stop.set()
            runner.join(60)
    finally:
        office.stop()


def _connected_with_alerts(path: Path) -> bool:
    """The raw file (independent of the reader under test): uplink connected and an alert raised."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return bool((doc.get("uplink") or {}).get("link_up")) and bool(doc.get("alerts"))




def test_the_document_of_a_real_agent_round_trips(running_agent):
    raw = json.loads(running_agent.status_file.read_text())
    doc = StatusDocument.from_json(raw)
    assert doc.as_json() == raw  # every key the agent writes is a field, and nothing is lost or renamed
    assert doc.device == "cam-0042" and doc.site == "musterstadt" and doc.frames_seen > 0
    assert doc.broker == running_agent.broker and doc.uplink.link_up
    assert "storage_low" in [a.code for a in doc.alerts] and doc.storage.level == "warn"
    running_agent.stop()
    last = read_status(running_agent.status_file)
    assert last.stopped and last.doc.exit_code == 0 and last.doc.device == "cam-0042"


def test_bodycam_status_of_a_real_agent_shows_the_link_and_the_alerts(running_agent):
    out = subprocess.run([sys.executable, "-m", "agent.cli", "status", "--config", str(running_agent.config)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line for line in lines if line.startswith("uplink:")] == [
        f"uplink:  connected to {running_agent.broker}, state idle"], out.stdout
    [storage] = [line.removeprefix("storage: ") for line in lines if line.startswith("storage: ")]
    assert [line for line in lines if line.startswith("ALERT:")] == [f"ALERT:   {storage} (warning)"], out.stdout
