"""Start-up recovery: what is removed (with a logged reason), what is quarantined, what is kept."""

from __future__ import annotations

import json
import logging

import pytest

from base.errors import BodycamError
from evidence.spool import Spool


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.INFO, logger="evidence.spool")
    return caplog


def warnings(caplog, level=logging.WARNING):
    return [r.getMessage() for r in caplog.records if r.levelno >= level]


def names(directory):
    return sorted(p.name for p in directory.iterdir() if p.is_file())


def test_stray_tmp_and_orphan_ciphertext_are_removed_with_a_reason(tmp_path, sealed, logs):
    sp = Spool.open(tmp_path)
    done = sealed(1)
    sp.store(done)
    crashed = sealed(2)
    (tmp_path / f"{crashed.stem}.age").write_bytes(crashed.ciphertext)      # renamed, then power loss
    (tmp_path / f"{crashed.stem}.manifest.json.tmp").write_bytes(b'{"se')  # manifest half-written
    report = Spool(tmp_path).recover()
    assert report.partial_segments == (crashed.stem,)
    assert {a.name for a in report.discarded} == {f"{crashed.stem}.age", f"{crashed.stem}.manifest.json.tmp"}
    assert report.quarantined == ()
    assert names(tmp_path) == [f"{done.stem}.age", f"{done.stem}.manifest.json"]
    msgs = warnings(logs)
    assert any(crashed.stem + ".age" in m and "being stored" in m for m in msgs)
    assert any(crashed.stem + ".manifest.json.tmp" in m and "interrupted" in m for m in msgs)


def test_manifest_without_ciphertext_is_quarantined_not_deleted(tmp_path, sealed, logs):
    sp = Spool.open(tmp_path)
    s = sealed(1)
    sp.store(s)
    (tmp_path / f"{s.stem}.age").unlink()
    sp = Spool(tmp_path)
    report = sp.recover()
    assert [a.name for a in report.quarantined] == [f"{s.stem}.manifest.json"]
    assert "ciphertext missing" in report.quarantined[0].reason
    assert (tmp_path / "quarantine" / f"{s.stem}.manifest.json").read_bytes() == s.manifest
    assert sp.pending() == []
    assert any("quarantined" in m for m in warnings(logs, logging.ERROR))


def test_mismatched_ciphertext_is_quarantined_with_its_manifest(tmp_path, sealed):
    sp = Spool.open(tmp_path)
    good, bad = sealed(1), sealed(2)
    sp.store(good)
    sp.store(bad)
    (tmp_path / f"{bad.stem}.age").write_bytes(b"bit rot")
    report = Spool(tmp_path).recover()
    assert sorted(a.name for a in report.quarantined) == [f"{bad.stem}.age", f"{bad.stem}.manifest.json"]
    assert "does not match" in report.quarantined[0].reason
    assert names(tmp_path / "quarantine") == [f"{bad.stem}.age", f"{bad.stem}.manifest.json"]
    assert report.pending == 1


def test_unreadable_manifest_is_quarantined(tmp_path, sealed):
    sp = Spool.open(tmp_path)
    s = sealed(1)
    sp.store(s)
    (tmp_path / f"{s.stem}.manifest.json").write_bytes(b"\x00\x00garbage")
    report = Spool(tmp_path).recover()
    assert len(report.quarantined) == 2 and "unreadable" in report.quarantined[0].reason


def test_quarantine_never_overwrites_earlier_quarantined_files(tmp_path, sealed):
    s = sealed(1)
    for _ in range(2):
        (tmp_path / f"{s.stem}.manifest.json").write_bytes(s.manifest)
        Spool(tmp_path).recover()
    assert names(tmp_path / "quarantine") == [f"{s.stem}.manifest.json", f"{s.stem}.manifest.json.1"]


def test_verify_manifest_rejection_quarantines(tmp_path, sealed):
    Spool.open(tmp_path).store(sealed(1))
    Spool.open(tmp_path).store(sealed(2, forged=True))

    class BadSignature(BodycamError):
        pass

    def verify(manifest: bytes):
        if json.loads(manifest).get("forged"):
            raise BadSignature("Ed25519 signature does not verify")

    sp = Spool(tmp_path, verify_manifest=verify)
    report = sp.recover()
    assert [i.seq for i in sp.pending()] == [1]
    assert "signature does not verify" in report.quarantined[0].reason
    assert Spool(tmp_path, verify_manifest=lambda m: False).recover().quarantined[0].reason.endswith("returned False")


def test_verifier_bug_is_not_mistaken_for_a_bad_manifest(tmp_path, sealed):
    Spool.open(tmp_path).store(sealed(1))

    def broken(manifest):
        raise TypeError("bug in the verifier")

    with pytest.raises(TypeError):
        Spool(tmp_path, verify_manifest=broken).recover()
    assert (tmp_path / f"{sealed(1).stem}.age").exists()


@pytest.mark.parametrize("left", [(".manifest.json", ".receipt.json"), (".receipt.json",)])
def test_interrupted_purge_is_completed(tmp_path, sealed, left):
    sp = Spool.open(tmp_path)
    s, keep = sealed(1), sealed(2)
    sp.store(s)
    sp.store(keep)
    sp.acknowledge(s.stem, s.ciphertext_sha256, b"r")
    for suffix in {".age", ".manifest.json", ".receipt.json"} - set(left):
        (tmp_path / f"{s.stem}{suffix}").unlink()
    report = Spool(tmp_path).recover()
    assert report.purges_completed == (s.stem,) and report.quarantined == () and report.discarded == ()
    assert names(tmp_path) == [f"{keep.stem}.age", f"{keep.stem}.manifest.json"]


def test_bad_receipt_is_quarantined_and_segment_stays_pending(tmp_path, sealed):
    sp = Spool.open(tmp_path)
    s = sealed(1)
    sp.store(s)
    (tmp_path / f"{s.stem}.receipt.json").write_text(json.dumps({"stem": s.stem, "ciphertext_sha256": "a" * 64}))
    sp = Spool(tmp_path)
    report = sp.recover()
    assert [a.name for a in report.quarantined] == [f"{s.stem}.receipt.json"]
    assert [i.stem for i in sp.pending()] == [s.stem]


def test_several_orphans_are_quarantined_not_deleted(tmp_path, sealed):
    for seq in (1, 2):
        (tmp_path / f"{sealed(seq).stem}.age").write_bytes(sealed(seq).ciphertext)
    report = Spool(tmp_path).recover()
    assert report.discarded == () and len(report.quarantined) == 2


def test_unknown_files_are_left_alone(tmp_path, sealed, logs):
    (tmp_path / "notes.txt").write_text("officer's note")
    (tmp_path / "other.tmp").write_text("not ours")
    report = Spool(tmp_path).recover()
    assert set(report.unknown) == {"notes.txt", "other.tmp"}
    assert names(tmp_path) == ["notes.txt", "other.tmp"]
    assert any("notes.txt" in m for m in warnings(logs))


def test_corrupt_chain_head_is_quarantined(tmp_path):
    (tmp_path / "chain_head.json").write_text("{torn")
    sp = Spool(tmp_path)
    report = sp.recover()
    assert [a.name for a in report.quarantined] == ["chain_head.json"]
    assert sp.newest_manifest() is None


@pytest.mark.parametrize("committed, expect", [(1, "discarded"), (2, "quarantined"), (0, "quarantined")])
def test_the_chain_head_tells_an_interrupted_write_from_a_lost_manifest(tmp_path, sealed, committed, expect):
    """Only seq head + 1 can be the segment being written at a crash; any other orphan ciphertext is kept."""
    s = sealed(2)
    (tmp_path / f"{s.stem}.age").write_bytes(s.ciphertext)
    report = Spool(tmp_path, committed_seq=committed).recover()
    assert [a.name for a in getattr(report, expect)] == [f"{s.stem}.age"]
    if expect == "quarantined":
        assert (tmp_path / "quarantine" / f"{s.stem}.age").read_bytes() == s.ciphertext
