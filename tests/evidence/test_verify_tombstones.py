"""`bodycam verify` and the back office's signed tombstones: a deletion reads as a deletion, not a gap, only
with the office key and only where the chain agrees."""

from __future__ import annotations

import hashlib
import json

import pytest

from evidence.keys import generate_office_key, load_office_public_key, load_office_signing_key
from evidence.tombstone import FILE_NAME, sign_tombstone
from evidence.verify import verify_paths

from .conftest import cut


@pytest.fixture
def three_incidents(env, frames_60, tmp_path):
    """Incidents a, b, c of two segments each in one store directory per incident; then b is deleted."""
    sealer = env.sealer()
    by_incident = {}
    for name, frames in (("a", frames_60[:20]), ("b", frames_60[20:40]), ("c", frames_60[40:])):
        sealed = env.seal_all(cut(frames, name), sealer)
        for s in sealed:
            (env.spool / s.ciphertext_name).rename(_dir(env, name) / s.ciphertext_name)
            (env.spool / s.manifest_name).rename(_dir(env, name) / s.manifest_name)
        by_incident[name] = sealed
    (tmp_path / "office").mkdir()
    generate_office_key(tmp_path / "office")
    return by_incident


def _dir(env, name):
    d = env.spool / name
    d.mkdir(exist_ok=True)
    return d


def _delete(env, sealed, signer, name="b", **override):
    segments = []
    for s in sealed:
        m = json.loads(s.manifest)
        segments.append({"stem": s.stem, "seq": m["seq"], "manifest_sha256": hashlib.sha256(s.manifest).hexdigest(),
                         "ciphertext_sha256": m["ciphertext_sha256"], "ciphertext_bytes": m["ciphertext_bytes"],
                         "start": m["start_time"], "end": m["end_time"]})
        (_dir(env, name) / s.ciphertext_name).unlink()
        (_dir(env, name) / s.manifest_name).unlink()
    fields = {"tombstone_id": 1, "site": env.site, "device_id": env.device_id, "incident_id": name,
              "start": segments[0]["start"], "end": segments[-1]["end"], "rule": "site duisburg: NW 14d",
              "decided_by": ["rita", "sven"], "deleted_at": "2025-07-01T08:00:00+00:00", "segments": segments,
              **override}
    (_dir(env, name) / FILE_NAME).write_bytes(sign_tombstone(signer, fields))


def test_a_signed_deletion_is_reported_as_such_and_the_set_verifies(env, three_incidents, tmp_path):
    _delete(env, three_incidents["b"], load_office_signing_key(tmp_path / "office" / "office.key"))
    office = load_office_public_key(tmp_path / "office" / "office.pub")
    report = verify_paths([env.spool], env.devices, office_key=office)
    assert report.ok, report.lines()
    assert [t.message() for t in report.deletions] == [
        f"device kod-07: incident b (2 segment(s), {report.deletions[0].doc['start']} to "
        f"{report.deletions[0].doc['end']}) deleted on 2025-07-01T08:00:00+00:00 under rule 'site duisburg: NW 14d', "
        "approved by rita and sven"]


def test_without_the_office_key_the_deletion_is_a_gap(env, three_incidents, tmp_path):
    _delete(env, three_incidents["b"], load_office_signing_key(tmp_path / "office" / "office.key"))
    report = verify_paths([env.spool], env.devices)
    assert not report.ok and any("gap" == p.kind for p in report.problems)
    assert any("--office-key" in n for n in report.notes)


def test_a_tombstone_signed_by_another_key_is_a_problem_and_the_gap_stays(env, three_incidents, tmp_path):
    (tmp_path / "other").mkdir()
    generate_office_key(tmp_path / "other")
    _delete(env, three_incidents["b"], load_office_signing_key(tmp_path / "other" / "office.key"))
    report = verify_paths([env.spool], env.devices, office_key=load_office_public_key(tmp_path / "office" / "office.pub"))
    kinds = {p.kind for p in report.problems}
    assert not report.ok and {"tombstone", "gap"} <= kinds


def test_a_tombstone_naming_another_segment_than_the_chain_holds_is_a_chain_problem(env, three_incidents, tmp_path):
    signer = load_office_signing_key(tmp_path / "office" / "office.key")
    sealed = three_incidents["b"]
    _delete(env, sealed, signer)
    tomb = _dir(env, "b") / FILE_NAME
    doc = json.loads(tomb.read_bytes())
    doc["segments"][-1]["manifest_sha256"] = "0" * 64  # says a different segment was deleted there
    fields = {k: v for k, v in doc.items() if k not in ("format", "signing_key_id", "signature")}
    tomb.write_bytes(sign_tombstone(signer, fields))
    report = verify_paths([env.spool], env.devices, office_key=load_office_public_key(tmp_path / "office" / "office.pub"))
    assert not report.ok
    assert any(p.kind == "chain" and "tombstone" in p.message for p in report.problems)


def test_deleted_oldest_and_newest_incidents_are_no_start_or_end_finding(env, three_incidents, tmp_path):
    from evidence.verify import ChainHead

    signer = load_office_signing_key(tmp_path / "office" / "office.key")
    _delete(env, three_incidents["a"], signer, name="a")
    _delete(env, three_incidents["c"], signer, name="c")
    office = load_office_public_key(tmp_path / "office" / "office.pub")
    report = verify_paths([env.spool], env.devices, heads=[ChainHead(6)], office_key=office)
    assert report.ok, report.lines()
    assert sorted(t.incident_id for t in report.deletions) == ["a", "c"]
    assert not verify_paths([env.spool], env.devices, heads=[ChainHead(6)]).ok  # without the key: start and end
