"""kill -9 during a retention run, at random moments, many times: catalog, store and office audit log agree.

Each round copies one prepared office (SQLite catalog, store, key, log), starts ``bodycam-office retention
run`` as its own process, waits for its first audit line (the first deletion), kills it with SIGKILL after
a random delay within the time the deletions take (measured by a first run) -- until 50 kills have
landed amid the deletions --, then
checks what a crash may leave (each incident active with all its files, or deleting with its tombstone
row, or deleted with its files gone and its ``incident_deleted`` line), runs retention again to the end,
and checks that everything is deleted with a signed tombstone and the log verifies.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evidence.audit import verify_log
from evidence.keys import generate_device_key, generate_evidence_keys, generate_office_key, load_office_public_key
from evidence.tombstone import FILE_NAME, read_tombstone
from tests.evidence.conftest import Env, cut, write_sealed


REPO = Path(__file__).resolve().parent.parent.parent
INCIDENTS = 30
KILLS_AMID_DELETIONS = 50
MAX_ROUNDS = 200


def _env(data: Path) -> dict:
    return {**{k: v for k, v in os.environ.items() if k != "DATABASE_URL"}, "PYTHONPATH": str(REPO),
            "BODYCAM_OFFICE_DATA": str(data), "DJANGO_SETTINGS_MODULE": "backoffice.office.settings"}


def _office(data: Path, *args, check=True):
    return subprocess.run([sys.executable, "-m", "backoffice", *args], env=_env(data), capture_output=True,
                          text=True, timeout=120, check=check)


@pytest.fixture(scope="module")
def template(tmp_path_factory, frames_30):
    root = tmp_path_factory.mktemp("office-template")
    data = root / "data"
    (data / "keys").mkdir(parents=True)
    generate_office_key(data / "keys")
    env = Env(root=root, keys=root / "municipality", escrow=root / "escrow", device=root / "device",
              state=root / "state", spool=root / "spool")
    for d in (env.keys, env.device, env.state):
        d.mkdir()
    generate_evidence_keys(env.keys)
    generate_device_key(env.device, device_id=env.device_id)
    sealer = env.sealer()
    for i in range(INCIDENTS):
        for seg in cut(frames_30, f"inc-{i:02d}"):
            sealed = sealer.seal(seg, clock_sync="ntp-synced")
            write_sealed(data / "store" / env.site / env.device_id / f"inc-{i:02d}", sealed)
            sealer.commit(sealed)
    _office(data, "migrate")
    _office(data, "ingest")
    return data


def _incidents(data: Path) -> dict[str, tuple[str, int | None, str | None]]:
    """incident id -> (state, tombstone id, tombstone completed_at)."""
    with sqlite3.connect(data / "catalog.sqlite3") as db:
        rows = db.execute("SELECT i.incident_id, i.state, t.id, t.completed_at FROM catalog_incident i "
                          "LEFT JOIN catalog_tombstone t ON t.incident_id = i.id").fetchall()
    return {name: (state, tomb, done) for name, state, tomb, done in rows}


def _log_events(data: Path) -> list[dict]:
    out = []
    for line in (data / "audit" / "office-audit.jsonl").read_bytes().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass  # a line torn by the kill; verify_log accounts for it
    return out


def _check_crash_state(data: Path) -> str:
    """Check what the kill left; say where it hit: 'before', 'during' or 'after' the deletions."""
    deleted_lines = {e["fields"]["tombstone"] for e in _log_events(data) if e["event"] == "incident_deleted"}
    for name, (state, tomb, done) in _incidents(data).items():
        files = {p.name for p in (data / "store" / "duisburg" / "kod-07" / name).iterdir()}
        media = {f for f in files if f.endswith((".age", ".manifest.json"))}
        if state == "active":
            assert tomb is None and len(media) == 6 and FILE_NAME not in files, (name, files)
        elif state == "deleting":
            assert tomb is not None and done is None, name
        else:
            assert state == "deleted" and done is not None and not media and FILE_NAME in files, (name, files)
            assert tomb in deleted_lines, name
    states = {state for state, _, _ in _incidents(data).values()}
    return "before" if states == {"active"} else "after" if states == {"deleted"} else "during"


def _check_finished(data: Path) -> None:
    office = load_office_public_key(data / "keys" / "office.pub")
    deleted_lines = {e["fields"]["tombstone"] for e in _log_events(data) if e["event"] == "incident_deleted"}
    for name, (state, tomb, done) in _incidents(data).items():
        directory = data / "store" / "duisburg" / "kod-07" / name
        assert state == "deleted" and done is not None and tomb in deleted_lines, name
        assert [p.name for p in directory.iterdir()] == [FILE_NAME], name
        assert read_tombstone((directory / FILE_NAME).read_bytes(), office).incident_id == name
    report = verify_log(data / "audit" / "office-audit.jsonl", office.key)
    assert report.ok, report.summary()


def _start_and_wait_for_the_first_deletion(data: Path) -> subprocess.Popen:
    """Start a retention run; return once it wrote its first audit line (Django's start-up is over)."""
    log = data / "audit" / "office-audit.jsonl"
    before = log.stat().st_size
    proc = subprocess.Popen([sys.executable, "-m", "backoffice", "retention", "run"], env=_env(data),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None and log.stat().st_size == before:
        time.sleep(0.001)
    return proc


@pytest.mark.system
@pytest.mark.timeout(1200)
def test_kill_9_at_random_moments_of_a_retention_run(template, tmp_path):
    measure = tmp_path / "measure"
    shutil.copytree(template, measure)
    proc = _start_and_wait_for_the_first_deletion(measure)
    started = time.monotonic()
    log = measure / "audit" / "office-audit.jsonl"
    while proc.poll() is None and log.read_bytes().count(b'"event":"incident_deleted"') < INCIDENTS:
        time.sleep(0.001)
    # From the first deletion to the last one's audit line: the run deletes in batches, so the deletions are
    # a small part of the process's life, and a window up to its exit would land most kills after them.
    window = time.monotonic() - started
    proc.wait(timeout=120)
    _check_finished(measure)
    rng = random.Random(15)
    outcomes = {"before": 0, "during": 0, "after": 0}
    n = 0
    while outcomes["during"] < KILLS_AMID_DELETIONS and n < MAX_ROUNDS:  # a loaded machine lands fewer amid them
        data = tmp_path / f"round-{n}"
        shutil.copytree(template, data)
        proc = _start_and_wait_for_the_first_deletion(data)
        time.sleep(rng.uniform(0.0, window))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        outcomes[_check_crash_state(data)] += 1
        _office(data, "retention", "run")
        _check_finished(data)
        shutil.rmtree(data)
        n += 1
    print(f"\nretention kill -9, where it hit: {outcomes} over {n} rounds (deleting {INCIDENTS} incidents "
          f"took {window:.2f} s in the measured run)")
    assert outcomes["during"] >= KILLS_AMID_DELETIONS
