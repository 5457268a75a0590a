"""bodycam status and the status-file contract the runtime writes to (/run/bodycam/status.json)."""

from __future__ import annotations

import argparse
import json
import os
import stat
import time

import pytest

from agent import doctor_cli
from agent.statusfile import SCHEMA, StatusFileError, read_status, write_status

from .conftest import add_segment


NOW = 1_764_000_000.0

#: What agent.runtime.Agent.status() writes (keys as of the runtime's first version).
RUNNING = {
    "version": "0.1.0", "time": NOW - 1, "device": "cam-0042", "site": "musterstadt",
    "state": "recording", "incident_id": "inc-7", "recording_since": NOW - 90,
    "frames_seen": 2700, "frames_lost": 3, "overrun_alarm": False, "refused_reason": None,
    "pre_event": {"seconds_held": 30.0, "memory_bytes": 1 << 20, "window_seconds": 30.0},
    "storage": {"level": "ok", "free_bytes": 5 << 30, "total_bytes": 30 << 30,
                "reason": "storage ok: 5120 MiB free of 30720 MiB on /var/lib/bodycam/spool", "path": "/x"},
    "backlog": {"segments": 4, "bytes": 12 << 20, "oldest_age_s": 300.0},
    "sealed": 9, "audit_head": {"seq": 12, "hash": "ab"}, "faults": {}, "restarts": {"camera": 0},
    "a_key_from_the_future": {"ignored": True},
}

#: The proposed additions (statusfile's docstring).
PROPOSED = {"time": NOW - 1, "pid": 4242, "started_at": NOW - 7200, "interval_s": 5.0,
            "device": {"id": "cam-0042", "site": "musterstadt"}, "state": "standby",
            "uplink": {"connected": True, "broker": "mqtt.musterstadt.de:8883", "last_ack_at": NOW - 30},
            "alarms": ["Kamera: 3 Bilder verworfen"]}


def args_for(device, **kw) -> argparse.Namespace:
    return argparse.Namespace(**({"config": str(device.config), "file": str(device.root / "status.json"),
                                  "json": False} | kw))


def test_reads_what_the_runtime_writes(tmp_path):
    from agent.runtime import _write_status_safely  # exactly the runtime's writer

    path = tmp_path / "status.json"
    _write_status_safely(str(path), RUNNING)
    status = read_status(path, now=NOW)
    assert status.running and status.doc["state"] == "recording" and status.age_s == pytest.approx(1.0)


def test_write_then_read(tmp_path):
    path = tmp_path / "status.json"
    write_status(dict(PROPOSED, time=NOW - 2), path)
    status = read_status(path, now=NOW)
    assert status.doc["schema"] == SCHEMA and status.doc["state"] == "standby"
    assert status.age_s == pytest.approx(2.0) and status.running
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]  # no temporary file left


def test_stale_after_three_intervals_but_at_least_15_s(tmp_path):
    path = tmp_path / "status.json"
    write_status({"time": NOW - 16, "interval_s": 5.0}, path)
    assert read_status(path, now=NOW).stale
    write_status({"time": NOW - 14, "interval_s": 5.0}, path)
    assert not read_status(path, now=NOW).stale
    write_status({"time": NOW - 14}, path)  # the runtime's 2 s interval: still the 15 s minimum
    assert not read_status(path, now=NOW).stale


def test_stopped_agent(tmp_path):
    path = tmp_path / "status.json"
    write_status({"time": NOW - 1, "state": "stopped", "exit_code": 1}, path)
    status = read_status(path, now=NOW)
    assert status.stopped and not status.running


def test_absent_file_means_not_running(tmp_path):
    assert read_status(tmp_path / "status.json") is None


@pytest.mark.parametrize("text, words", [
    ("{not json", "not valid JSON"),
    ('{"state": "standby"}', "no time stamp"),
    ('{"schema": 2, "time": 1}', "schema 2"),
])
def test_bad_status_files(tmp_path, text, words):
    path = tmp_path / "status.json"
    path.write_text(text)
    with pytest.raises(StatusFileError, match=words):
        read_status(path)


def test_unreadable_file_says_sudo(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    path = tmp_path / "status.json"
    path.write_text("{}")
    path.chmod(0)
    with pytest.raises(StatusFileError, match="sudo"):
        read_status(path)


def test_status_of_a_running_agent(device, capsys):
    write_status(RUNNING, device.root / "status.json")
    assert doctor_cli.cmd_status(args_for(device), now=NOW) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "agent:   running, version 0.1.0, device musterstadt/cam-0042",
        "state:   RECORDING for 90 s (incident inc-7)",
        "camera:  2700 frame(s) seen, 3 lost",
        "storage: storage ok: 5120 MiB free of 30720 MiB on /var/lib/bodycam/spool",
        "backlog: 4 segment(s), 12.0 MiB waiting for the back office, oldest 5 min",
    ]


def test_status_with_the_proposed_keys(device, capsys):
    write_status(PROPOSED, device.root / "status.json")
    assert doctor_cli.cmd_status(args_for(device), now=NOW) == 0
    assert capsys.readouterr().out.splitlines() == [
        "agent:   running, version ?, device musterstadt/cam-0042, pid 4242, up 2 h",
        "state:   STANDBY",
        "uplink:  connected to mqtt.musterstadt.de:8883, last receipt 30 s ago",
        "ALARM:   Kamera: 3 Bilder verworfen",
    ]


def test_faults_and_refusals_are_shown(device, capsys):
    write_status(dict(RUNNING, state="standby", recording_since=None, faults={"camera": "no frames for 5 s"},
                      refused_reason="storage critical"), device.root / "status.json")
    doctor_cli.cmd_status(args_for(device), now=NOW)
    out = capsys.readouterr().out
    assert "STANDBY (incident inc-7); recording refused: storage critical" in out
    assert "FAULT:   camera: no frames for 5 s" in out


def test_status_json_passes_the_document_through(device, capsys):
    write_status(RUNNING, device.root / "status.json")
    assert doctor_cli.cmd_status(args_for(device, json=True), now=NOW) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["running"] is True and doc["backlog"]["segments"] == 4 and doc["a_key_from_the_future"]


def test_status_file_named_by_the_config(device, capsys):
    path = device.root / "elsewhere.json"
    with device.config.open("a") as fh:
        fh.write(f'[runtime]\nstatus_file = "{path}"\n')
    write_status(RUNNING, path)
    assert doctor_cli.cmd_status(args_for(device, file=None), now=NOW) == 0


def test_stopped_agent_says_its_exit_code(device, capsys):
    write_status({"time": NOW - 60, "state": "stopped", "exit_code": 1}, device.root / "status.json")
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
    write_status({"time": time.time() - 300}, device.root / "status.json")
    assert doctor_cli.cmd_status(args_for(device, json=True)) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["running"] is False and "not responding" in doc["reason"] and doc["backlog"]["segments"] == 0


def test_unreadable_status_is_one_sentence(device, capsys):
    (device.root / "status.json").write_text("{")
    assert doctor_cli.cmd_status(args_for(device)) == 1
    assert capsys.readouterr().err.startswith("bodycam: ")
