"""The demo's local back office keeps the evidence catalog: it migrates an SQLite catalog in its data directory
while the broker and receiver start, catalogs what its store already holds, and no stored segment gets its
receipt before the catalog is open. (The whole demo, with a recording that ends up in the catalog, is
tests/test_cli.py::test_demo_records_seals_verifies_and_exports_in_real_time.)"""

from __future__ import annotations

import shutil
import sqlite3
import time

import pytest

from agent.demo import BackOfficeProcess
from backoffice.localoffice import LocalCatalog
from backoffice.store import StoreError
from evidence.keys import generate_device_key, generate_evidence_keys
from tests.evidence.conftest import Env, cut, write_sealed


def test_a_stored_segment_waits_for_the_catalog_and_its_receipt_is_withheld_if_it_does_not_open(tmp_path,
                                                                                                 monkeypatch):
    catalog = LocalCatalog(tmp_path / "office", tmp_path / "store", {})  # never started: still "opening"
    monkeypatch.setattr(LocalCatalog, "OPEN_WAIT_S", 0.05)

    class Manifest:
        stem = "kod-07-0000000001"

    with pytest.raises(StoreError, match="still opening"):
        catalog.record([Manifest()])


@pytest.mark.skipif(shutil.which("mosquitto") is None, reason="mosquitto is not installed (.ci/dev installs it)")
def test_the_demos_office_migrates_its_catalog_and_catalogs_what_its_store_holds(frames_30, tmp_path):
    env = Env(root=tmp_path, keys=tmp_path / "municipality", escrow=tmp_path / "escrow", device=tmp_path / "device",
              state=tmp_path / "state", spool=tmp_path / "spool")
    for d in (env.keys, env.device, env.state):
        d.mkdir()
    generate_evidence_keys(env.keys)
    generate_device_key(env.device, device_id=env.device_id)
    root = tmp_path / "backoffice"
    sealer = env.sealer()
    incident = root / "store" / env.site / env.device_id / "inc-earlier"
    for seg in cut(frames_30, "inc-earlier"):  # a recording stored by an earlier demo run
        sealed = sealer.seal(seg, clock_sync="ntp-synced")
        write_sealed(incident, sealed)
        sealer.commit(sealed)
    stems = sorted(p.name.removesuffix(".age") for p in incident.glob("*.age"))

    office = BackOfficeProcess(root, env.device / "device.pub", env.device_id)
    try:
        assert office.ready is not None, office.error
        database = root / "office" / "catalog.sqlite3"
        assert office.ready["catalog"] == str(database) and office.ready["catalog_problem"] == ""
        deadline, rows = time.monotonic() + 60, []
        while time.monotonic() < deadline and len(rows) < len(stems):
            time.sleep(0.2)
            try:
                with sqlite3.connect(database) as db:
                    rows = db.execute("SELECT s.stem, i.incident_id, s.verification FROM catalog_segment s "
                                      "JOIN catalog_incident i ON i.id = s.incident_id ORDER BY s.stem").fetchall()
            except sqlite3.OperationalError:  # not migrated yet
                rows = []
    finally:
        office.stop()
    assert rows == [(stem, "inc-earlier", "verified") for stem in stems]
    assert (root / "office" / "keys" / "office.key").exists() and (root / "office" / "audit").is_dir()
