"""kill -9 during a retention run, at random moments, many times: catalog, store and office audit log agree.

Each round copies one prepared office (catalog, store, key, log), starts ``bodycam-office retention
run`` as its own process, waits for its first audit line (the first deletion), kills it with SIGKILL after
a random delay within the time the deletions take (measured by a first run) -- until enough kills have
landed amid the deletions (50 on SQLite, 20 on PostgreSQL) --, then
checks what a crash may leave (each incident active with all its files, or deleting with its tombstone
row, or deleted with its files gone and its ``incident_deleted`` line), runs retention again to the end,
and checks that everything is deleted with a signed tombstone and the log verifies.

On SQLite the catalog is the file in the copied data directory; on PostgreSQL (a real server started by
the test, :mod:`.pgserver`) each round gets its own database, created from a template database
(``CREATE DATABASE ... TEMPLATE``) that was migrated and filled together with the template's store, so
the server really sees a client die mid-transaction.
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

from .pgserver import postgres_bin, postgresql_server
from evidence.audit import verify_log
from evidence.keys import generate_device_key, generate_evidence_keys, generate_office_key, load_office_public_key
from evidence.tombstone import FILE_NAME, read_tombstone
from tests.evidence.conftest import Env, cut, write_sealed


REPO = Path(__file__).resolve().parent.parent.parent
INCIDENTS = 30
KILLS_AMID_DELETIONS = {"sqlite": 50, "postgresql": 20}
MAX_ROUNDS = 200


class SqliteCatalog:
    """The catalog is ``catalog.sqlite3`` in the data directory: copying the directory copies it."""

    name = "sqlite"

    def env(self, data: Path) -> dict:
        return {**{k: v for k, v in os.environ.items() if k != "DATABASE_URL"}, "PYTHONPATH": str(REPO),
                "BODYCAM_OFFICE_DATA": str(data), "DJANGO_SETTINGS_MODULE": "backoffice.office.settings"}

    def prepare(self, data: Path, template: Path) -> None:
        shutil.copytree(template, data)

    def query(self, data: Path, sql: str) -> list[tuple]:
        with sqlite3.connect(data / "catalog.sqlite3") as db:
            return db.execute(sql).fetchall()

    def discard(self, data: Path) -> None:
        shutil.rmtree(data)


class PostgresCatalog(SqliteCatalog):
    """One database per data directory on one server, each made from the template's database."""

    name = "postgresql"

    def __init__(self, server_url: str):
        self.base = server_url.rsplit("/", 1)[0]

    def _db(self, data: Path) -> str:
        return "office_" + data.name.replace("-", "_")

    def env(self, data: Path) -> dict:
        return {**super().env(data), "DATABASE_URL": f"{self.base}/{self._db(data)}"}

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(f"{self.base}/postgres", autocommit=True) as conn:
            conn.execute(sql)

    def create_empty(self, data: Path) -> None:
        self._admin(f"CREATE DATABASE {self._db(data)}")

    def prepare(self, data: Path, template: Path) -> None:
        shutil.copytree(template, data)
        self._admin(f"CREATE DATABASE {self._db(data)} TEMPLATE {self._db(template)}")

    def query(self, data: Path, sql: str) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.env(data)["DATABASE_URL"]) as conn:
            return [tuple(str(v) if hasattr(v, "isoformat") else v for v in row) for row in conn.execute(sql)]

    def discard(self, data: Path) -> None:
        shutil.rmtree(data)
        self._admin(f"DROP DATABASE {self._db(data)} WITH (FORCE)")  # a killed client may linger a moment


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    postgres_bin() is None, reason="PostgreSQL is not installed (see .ci/dev)"))])
def catalog(request):
    if request.param == "sqlite":
        yield SqliteCatalog()
        return
    with postgresql_server() as url:
        yield PostgresCatalog(url)


def _office(catalog, data: Path, *args, check=True):
    return subprocess.run([sys.executable, "-m", "backoffice", *args], env=catalog.env(data), capture_output=True,
                          text=True, timeout=120, check=check)


@pytest.fixture(scope="module")
def template(tmp_path_factory, frames_30, catalog):
    root = tmp_path_factory.mktemp(f"office-template-{catalog.name}")
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
    if isinstance(catalog, PostgresCatalog):
        catalog.create_empty(data)
    _office(catalog, data, "migrate")
    _office(catalog, data, "ingest")
    return data


def _incidents(catalog, data: Path) -> dict[str, tuple[str, int | None, str | None]]:
    """incident id -> (state, tombstone id, tombstone completed_at)."""
    rows = catalog.query(data, "SELECT i.incident_id, i.state, t.id, t.completed_at FROM catalog_incident i "
                               "LEFT JOIN catalog_tombstone t ON t.incident_id = i.id")
    return {name: (state, tomb, done) for name, state, tomb, done in rows}


def _log_events(data: Path) -> list[dict]:
    out = []
    for line in (data / "audit" / "office-audit.jsonl").read_bytes().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass  # a line torn by the kill; verify_log accounts for it
    return out


def _check_crash_state(catalog, data: Path) -> str:
    """Check what the kill left; say where it hit: 'before', 'during' or 'after' the deletions."""
    deleted_lines = {e["fields"]["tombstone"] for e in _log_events(data) if e["event"] == "incident_deleted"}
    incidents = _incidents(catalog, data)
    for name, (state, tomb, done) in incidents.items():
        files = {p.name for p in (data / "store" / "duisburg" / "kod-07" / name).iterdir()}
        media = {f for f in files if f.endswith((".age", ".manifest.json"))}
        if state == "active":
            assert tomb is None and len(media) == 6 and FILE_NAME not in files, (name, files)
        elif state == "deleting":
            assert tomb is not None and done is None, name
        else:
            assert state == "deleted" and done is not None and not media and FILE_NAME in files, (name, files)
            assert tomb in deleted_lines, name
    states = {state for state, _, _ in incidents.values()}
    return "before" if states == {"active"} else "after" if states == {"deleted"} else "during"


def _check_finished(catalog, data: Path) -> None:
    office = load_office_public_key(data / "keys" / "office.pub")
    deleted_lines = {e["fields"]["tombstone"] for e in _log_events(data) if e["event"] == "incident_deleted"}
    incidents = _incidents(catalog, data)
    assert len(incidents) == INCIDENTS
    for name, (state, tomb, done) in incidents.items():
        directory = data / "store" / "duisburg" / "kod-07" / name
        assert state == "deleted" and done is not None and tomb in deleted_lines, name
        assert [p.name for p in directory.iterdir()] == [FILE_NAME], name
        assert read_tombstone((directory / FILE_NAME).read_bytes(), office).incident_id == name
    report = verify_log(data / "audit" / "office-audit.jsonl", office.key)
    assert report.ok, report.summary()


def _start_and_wait_for_the_first_deletion(catalog, data: Path) -> subprocess.Popen:
    """Start a retention run; return once it wrote its first audit line (Django's start-up is over)."""
    log = data / "audit" / "office-audit.jsonl"
    before = log.stat().st_size
    proc = subprocess.Popen([sys.executable, "-m", "backoffice", "retention", "run"], env=catalog.env(data),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None and log.stat().st_size == before:
        time.sleep(0.001)
    return proc


@pytest.mark.system
@pytest.mark.timeout(1200)
def test_kill_9_at_random_moments_of_a_retention_run(catalog, template, tmp_path):
    measure = tmp_path / "measure"
    catalog.prepare(measure, template)
    proc = _start_and_wait_for_the_first_deletion(catalog, measure)
    started = time.monotonic()
    log = measure / "audit" / "office-audit.jsonl"
    while proc.poll() is None and log.read_bytes().count(b'"event":"incident_deleted"') < INCIDENTS:
        time.sleep(0.001)
    # From the first deletion to the last one's audit line: the run deletes in batches, so the deletions are
    # a small part of the process's life, and a window up to its exit would land most kills after them.
    window = time.monotonic() - started
    proc.wait(timeout=120)
    _check_finished(catalog, measure)
    catalog.discard(measure)
    kills = KILLS_AMID_DELETIONS[catalog.name]
    rng = random.Random(15)
    outcomes = {"before": 0, "during": 0, "after": 0}
    n = 0
    while outcomes["during"] < kills and n < MAX_ROUNDS:  # a loaded machine lands fewer amid them
        data = tmp_path / f"round-{n}"
        catalog.prepare(data, template)
        proc = _start_and_wait_for_the_first_deletion(catalog, data)
        time.sleep(rng.uniform(0.0, window))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        outcomes[_check_crash_state(catalog, data)] += 1
        _office(catalog, data, "retention", "run")
        _check_finished(catalog, data)
        catalog.discard(data)
        n += 1
    print(f"\nretention kill -9 on {catalog.name}, where it hit: {outcomes} over {n} rounds (deleting {INCIDENTS} "
          f"incidents took {window:.2f} s in the measured run)")
    assert outcomes["during"] >= kills
