"""Spool behaviour while running: store, read, acknowledge, purge, backlog, refused input."""

from __future__ import annotations

import errno
import json
import os

import pytest

from evidence import spool as spool_mod
from base.errors import StorageFullError, StoragePermissionError
from evidence.spool import CorruptSegmentError, InvalidSegmentError, NotAcknowledgedError, ReceiptMismatchError, SegmentExistsError, SegmentNotFoundError, Spool, SpoolError


def files(directory):
    return sorted(p.name for p in directory.iterdir())


def test_store_then_reopen_roundtrip(tmp_path, sealed):
    d = tmp_path / "spool"
    sp = Spool.open(d)
    segs = [sealed(seq) for seq in (7, 3, 5)]  # stored out of order: pending() sorts by seq
    for s in segs:
        sp.store(s)
    assert files(d) == sorted([f"{s.stem}{suf}" for s in segs for suf in (".age", ".manifest.json")])

    again = Spool.open(d)
    assert again.last_recovery.clean
    assert [i.seq for i in again.pending()] == [3, 5, 7]
    for s in segs:
        got = again.read(s.stem)
        assert got.ciphertext == s.ciphertext and got.manifest == s.manifest
        assert got.info.ciphertext_sha256 == s.ciphertext_sha256
    assert json.loads(again.newest_manifest())["seq"] == 7


def test_store_refuses_inconsistent_segment_and_writes_nothing(tmp_path, sealed):
    d = tmp_path / "spool"
    sp = Spool.open(d)
    good = sealed(1)
    with pytest.raises(InvalidSegmentError, match="claimed"):
        sp.store(type(good)(good.stem, good.ciphertext + b"x", good.manifest, 1, good.ciphertext_sha256))
    with pytest.raises(InvalidSegmentError, match="manifest names seq"):
        sp.store(type(good)(good.stem, good.ciphertext, good.manifest, 2, good.ciphertext_sha256))
    with pytest.raises(InvalidSegmentError, match="not valid JSON"):
        sp.store(type(good)(good.stem, good.ciphertext, b"{nope", 1, good.ciphertext_sha256))
    with pytest.raises(InvalidSegmentError, match="stem"):
        sp.store(type(good)("../evil", good.ciphertext, good.manifest, 1, good.ciphertext_sha256))
    assert files(d) == []


def test_store_never_overwrites(tmp_path, sealed):
    sp = Spool.open(tmp_path)
    sp.store(sealed(1))
    with pytest.raises(SegmentExistsError):
        sp.store(sealed(1, payload=b"other bytes"))
    assert sp.read(sealed(1).stem).ciphertext == sealed(1).ciphertext


def test_use_before_recover_is_refused(tmp_path, sealed):
    with pytest.raises(SpoolError, match="recover"):
        Spool(tmp_path).store(sealed(1))


def test_acknowledge_with_wrong_hash_raises_and_deletes_nothing(tmp_path, sealed):
    d = tmp_path / "spool"
    sp = Spool.open(d)
    s = sealed(1)
    sp.store(s)
    before = files(d)
    with pytest.raises(ReceiptMismatchError, match="stays pending"):
        sp.acknowledge(s.stem, "0" * 64, b'{"ok":true}')
    assert files(d) == before
    assert [i.stem for i in sp.pending()] == [s.stem]
    with pytest.raises(NotAcknowledgedError):
        sp.purge(s.stem)
    assert files(d) == before
    with pytest.raises(SegmentNotFoundError):
        sp.acknowledge("dev1-0000000099", s.ciphertext_sha256, b"")


def test_purge_without_receipt_raises(tmp_path, sealed):
    d = tmp_path / "spool"
    sp = Spool.open(d)
    s = sealed(1)
    sp.store(s)
    before = files(d)
    with pytest.raises(NotAcknowledgedError, match="no receipt"):
        sp.purge(s.stem)
    assert files(d) == before
    assert sp.read(s.stem).ciphertext == s.ciphertext


def test_purge_refused_when_receipt_on_card_was_altered(tmp_path, sealed):
    d = tmp_path / "spool"
    sp = Spool.open(d)
    s = sealed(1)
    sp.store(s)
    sp.acknowledge(s.stem, s.ciphertext_sha256, b"receipt")
    receipt = d / f"{s.stem}.receipt.json"
    receipt.write_text(json.dumps({"stem": s.stem, "ciphertext_sha256": "f" * 64}))
    with pytest.raises(NotAcknowledgedError):
        sp.purge(s.stem)
    assert (d / f"{s.stem}.age").exists()


def test_acknowledge_is_durable_and_purge_deletes_only_then(tmp_path, sealed):
    d = tmp_path / "spool"
    sp = Spool.open(d)
    a, b = sealed(1), sealed(2)
    sp.store(a)
    sp.store(b)
    sp.acknowledge(a.stem, a.ciphertext_sha256.upper(), b'{"receiver":"rathaus"}')
    sp.acknowledge(a.stem, a.ciphertext_sha256, b"second ack is harmless")
    record = json.loads((d / f"{a.stem}.receipt.json").read_text())
    assert record["ciphertext_sha256"] == a.ciphertext_sha256 and record["stem"] == a.stem

    reopened = Spool.open(d)
    assert [i.stem for i in reopened.pending()] == [b.stem]
    assert [i.stem for i in reopened.acknowledged()] == [a.stem]
    reopened.purge(a.stem)
    assert files(d) == sorted([f"{b.stem}.age", f"{b.stem}.manifest.json"])
    with pytest.raises(SegmentNotFoundError):
        reopened.read(a.stem)


def test_chain_head_survives_purging_everything(tmp_path, sealed):
    d = tmp_path / "spool"
    sp = Spool.open(d)
    for seq in (1, 2):
        s = sealed(seq)
        sp.store(s)
        sp.acknowledge(s.stem, s.ciphertext_sha256, b"r")
    sp.purge(sealed(2).stem)  # the newest first: its manifest must be kept as the chain head
    sp.purge(sealed(1).stem)
    assert sp.pending() == [] and sp.acknowledged() == []
    assert Spool.open(d).newest_manifest() == sealed(2).manifest
    sp2 = Spool.open(d)
    sp2.store(sealed(3))
    assert sp2.newest_manifest() == sealed(3).manifest


def test_newest_manifest_none_on_fresh_card(tmp_path):
    assert Spool.open(tmp_path).newest_manifest() is None


def test_backlog_numbers(tmp_path, sealed):
    now = [1_000.0]
    sp = Spool.open(tmp_path, clock=lambda: now[0])
    assert sp.backlog().count == 0 and sp.backlog().oldest_age_s is None
    segs = [sealed(seq, payload=bytes(1000 * seq)) for seq in (1, 2, 3)]
    for i, s in enumerate(segs):
        sp.store(s)
        os.utime(tmp_path / f"{s.stem}.manifest.json", (900.0 + i, 900.0 + i))
    sp = Spool.open(tmp_path, clock=lambda: now[0])  # stored_at comes from the manifests' mtimes
    sp.acknowledge(segs[0].stem, segs[0].ciphertext_sha256, b"r")
    bl = sp.backlog()
    assert bl.count == 2
    assert bl.bytes == 2000 + 3000 + len(segs[1].manifest) + len(segs[2].manifest)
    assert bl.oldest_seq == 2
    assert bl.oldest_age_s == pytest.approx(99.0)
    assert bl.acknowledged_count == 1 and bl.acknowledged_bytes == 1000 + len(segs[0].manifest)


def test_read_detects_a_corrupted_card(tmp_path, sealed):
    sp = Spool.open(tmp_path)
    s = sealed(1)
    sp.store(s)
    path = tmp_path / f"{s.stem}.age"
    data = bytearray(path.read_bytes())
    data[100] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptSegmentError, match="SD card may be failing"):
        sp.read(s.stem)
    assert path.exists()


def test_storage_full_while_storing_leaves_no_trace(tmp_path, sealed, monkeypatch):
    sp = Spool.open(tmp_path)
    sp.store(sealed(1))
    before = files(tmp_path)
    real_write = os.write
    calls = {"n": 0}

    def write_until_full(fd, data):
        calls["n"] += 1
        if calls["n"] == 2:  # second file (the manifest): the card fills up
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(spool_mod.os, "write", write_until_full)
    with pytest.raises(StorageFullError, match="storage full while writing the manifest"):
        sp.store(sealed(2))
    monkeypatch.setattr(spool_mod.os, "write", real_write)
    assert files(tmp_path) == before  # neither the ciphertext nor a tmp file is left behind
    assert [i.seq for i in sp.pending()] == [1]
    sp.store(sealed(2))  # the caller may retry the same object once space is back
    assert [i.seq for i in Spool.open(tmp_path).pending()] == [1, 2]


def test_permission_denied_names_the_path(tmp_path, sealed, monkeypatch):
    sp = Spool.open(tmp_path)

    def denied(path, flags, mode=0o777):
        raise OSError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(spool_mod.os, "open", denied)
    with pytest.raises(StoragePermissionError) as info:
        sp.store(sealed(1))
    assert str(tmp_path) in str(info.value) and "agent's user" in str(info.value)


def test_write_discipline_is_tmp_fsync_rename_then_dir_fsync(tmp_path, sealed, monkeypatch):
    """The order of system calls is the crash-safety argument; SIGKILL tests cannot see a missing fsync."""
    sp = Spool.open(tmp_path)
    calls, fds = [], {}
    real_open, real_fsync, real_rename, real_unlink = os.open, os.fsync, os.rename, os.unlink

    def rec_open(path, flags, mode=0o777, **kw):
        fd = real_open(path, flags, mode, **kw)
        fds[fd] = "DIR" if os.fspath(path) == os.fspath(tmp_path) else os.path.basename(path)
        return fd

    monkeypatch.setattr(spool_mod.os, "open", rec_open)
    monkeypatch.setattr(spool_mod.os, "fsync", lambda fd: (calls.append(("fsync", fds[fd])), real_fsync(fd))[1])
    monkeypatch.setattr(spool_mod.os, "rename",
                        lambda a, b: (calls.append(("rename", os.path.basename(b))), real_rename(a, b))[1])
    monkeypatch.setattr(spool_mod.os, "unlink",
                        lambda p, **kw: (calls.append(("unlink", os.path.basename(p))), real_unlink(p, **kw))[1])
    s = sealed(1)
    sp.store(s)
    age, man, rec = f"{s.stem}.age", f"{s.stem}.manifest.json", f"{s.stem}.receipt.json"
    assert calls == [("fsync", age + ".tmp"), ("rename", age), ("fsync", "DIR"),
                     ("fsync", man + ".tmp"), ("rename", man), ("fsync", "DIR")]
    calls.clear()
    sp.store(sealed(2))
    sp.acknowledge(s.stem, s.ciphertext_sha256, b"r")
    sp.purge(s.stem)  # not the newest: no chain-head copy
    assert calls[-9:] == [("fsync", rec + ".tmp"), ("rename", rec), ("fsync", "DIR"),
                          ("unlink", age), ("fsync", "DIR"), ("unlink", man), ("fsync", "DIR"),
                          ("unlink", rec), ("fsync", "DIR")]


def test_writer_and_uplink_threads_together(tmp_path, sealed):
    import threading

    sp = Spool.open(tmp_path)
    done = threading.Event()
    errors, acked = [], []

    def uplink():
        try:
            while not (done.is_set() and not sp.pending()):
                for info in sp.pending():
                    seg = sp.read(info.stem)
                    sp.acknowledge(info.stem, seg.info.ciphertext_sha256, b"r")
                    sp.purge(info.stem)
                    acked.append(info.seq)
                sp.backlog()
                sp.newest_manifest()
        except Exception as exc:  # reported to the test thread below
            errors.append(exc)

    t = threading.Thread(target=uplink, name="SpoolTestUplinkWorker")
    t.start()
    for seq in range(40):
        sp.store(sealed(seq))
    done.set()
    t.join(timeout=30)
    assert not t.is_alive() and errors == []
    assert sorted(acked) == list(range(40))
    assert Spool.open(tmp_path).newest_manifest() == sealed(39).manifest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chain_head.json"]


def test_a_streamed_segment_is_stored_like_a_whole_one(tmp_path, sealed):
    sp = Spool.open(tmp_path)
    s = sealed(1)
    with sp.begin(s.stem) as writer:
        for i in range(0, len(s.ciphertext), 1000):
            writer.write(memoryview(s.ciphertext)[i:i + 1000])
        assert files(tmp_path) == [f"{s.stem}.age.tmp"]  # not visible as a segment while being written
        assert sp.pending() == []
        info = writer.commit(s.manifest, s.seq, s.ciphertext_sha256)
    assert info.ciphertext_bytes == len(s.ciphertext)
    assert files(tmp_path) == [f"{s.stem}.age", f"{s.stem}.manifest.json"]
    assert Spool.open(tmp_path).read(s.stem).ciphertext == s.ciphertext


def test_a_streamed_segment_that_is_not_committed_leaves_nothing(tmp_path, sealed):
    sp = Spool.open(tmp_path)
    s = sealed(1)
    with pytest.raises(RuntimeError, match="sealing failed"):
        with sp.begin(s.stem) as writer:
            writer.write(s.ciphertext[:100])
            raise RuntimeError("sealing failed")
    assert files(tmp_path) == []
    with sp.begin(s.stem) as writer:  # the stem is free again for the retry
        writer.write(s.ciphertext)
        writer.commit(s.manifest, s.seq, s.ciphertext_sha256)
    assert [i.stem for i in sp.pending()] == [s.stem]
    with pytest.raises(SegmentExistsError):
        sp.begin(s.stem)


def test_a_streamed_segment_must_match_its_manifest(tmp_path, sealed):
    sp = Spool.open(tmp_path)
    s = sealed(1)
    with sp.begin(s.stem) as writer:
        writer.write(s.ciphertext + b"x")  # the bytes written are what counts, not what the caller claims
        with pytest.raises(InvalidSegmentError, match="hashes to"):
            writer.commit(s.manifest, s.seq, s.ciphertext_sha256)
    with sp.begin(s.stem) as writer:
        writer.write(s.ciphertext)
        with pytest.raises(InvalidSegmentError, match="manifest names seq 1"):
            writer.commit(s.manifest, 2, s.ciphertext_sha256)
    assert files(tmp_path) == [] and sp.pending() == []


def test_storage_full_while_streaming_leaves_no_trace(tmp_path, sealed, monkeypatch):
    sp = Spool.open(tmp_path)
    s = sealed(1)
    real_write = os.write

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    with sp.begin(s.stem) as writer:
        writer.write(s.ciphertext[:10])
        monkeypatch.setattr(spool_mod.os, "write", full)
        with pytest.raises(StorageFullError, match="storage full while writing the ciphertext"):
            writer.write(s.ciphertext[10:])
    monkeypatch.setattr(spool_mod.os, "write", real_write)
    assert files(tmp_path) == [] and sp.pending() == []


def spool_with_one_segment(tmp_path, sealed):
    sp = Spool.open(tmp_path)
    s = sealed(1)
    sp.store(s)
    return sp, s


def test_an_opened_segment_is_read_piece_by_piece(tmp_path, sealed):
    sp, s = spool_with_one_segment(tmp_path, sealed)
    with sp.open_segment(s.stem) as reader:
        assert reader.manifest == s.manifest and reader.size == len(s.ciphertext)
        pieces = [reader.read(offset, 1000) for offset in range(0, reader.size, 1000)]
        assert b"".join(pieces) == s.ciphertext
        assert reader.read(reader.size, 1000) == b""
    with pytest.raises(SpoolError, match="closed"):
        reader.read(0, 10)


def test_opening_a_corrupt_segment_says_the_card_may_be_failing(tmp_path, sealed):
    sp, s = spool_with_one_segment(tmp_path, sealed)
    path = tmp_path / f"{s.stem}.age"
    path.write_bytes(b"X" + s.ciphertext[1:])
    with pytest.raises(CorruptSegmentError, match="SD card may be failing"):
        sp.open_segment(s.stem)
    path.write_bytes(s.ciphertext)
    with sp.open_segment(s.stem) as reader:
        os.truncate(path, 100)  # the card loses the file's tail after the check
        with pytest.raises(CorruptSegmentError, match="shorter than its manifest"):
            reader.read(0, 1000)


def test_a_purge_does_not_disturb_an_open_reader(tmp_path, sealed):
    sp, s = spool_with_one_segment(tmp_path, sealed)
    reader = sp.open_segment(s.stem)
    sp.acknowledge(s.stem, s.ciphertext_sha256, b'{"receipt": 1}')
    sp.purge(s.stem)
    assert reader.read(0, len(s.ciphertext)) == s.ciphertext
    reader.close()
    with pytest.raises(SegmentNotFoundError):
        sp.open_segment(s.stem)
