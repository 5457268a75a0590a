"""The audit log: chain and signatures verify; tampering, deletion and truncation are reported."""

from __future__ import annotations

import json
import threading

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from evidence import audit
from base.errors import StorageFullError
from evidence.audit import AuditError, AuditHead, AuditKeyMismatchError, AuditLog, verify_log


@pytest.fixture
def key():
    return Ed25519PrivateKey.generate()


@pytest.fixture
def log_path(tmp_path):
    return tmp_path / "audit.jsonl"


def write_log(path, key, n=5, note="Überwachung"):
    with AuditLog(path, key, clock=lambda: 1_700_000_000.25) as log:
        for i in range(n):
            log.append(audit.SEGMENT_SEALED, stem=f"dev1-{i:010d}", seq=i, note=note)
        return log.head


def lines(path):
    return path.read_bytes().splitlines(keepends=True)


def test_chain_verifies_and_lines_have_the_documented_fields(log_path, key):
    head = write_log(log_path, key)
    report = verify_log(log_path, key.public_key(), expected_head=head)
    assert report.ok, report.summary()
    assert report.lines == 6 and report.head == head == AuditHead(5, head.hash)
    first, second = (json.loads(x) for x in lines(log_path)[:2])
    assert first["event"] == audit.LOG_CREATED and first["seq"] == 0 and first["prev"] == "0" * 64
    assert second["prev"] == first["hash"] and second["ts"] == "2023-11-14T22:13:20.250Z"
    assert second["fields"] == {"stem": "dev1-0000000000", "seq": 0, "note": "Überwachung"}
    assert set(second) == {"v", "ts", "seq", "event", "fields", "prev", "hash", "sig"}


def test_reopening_continues_the_chain(log_path, key):
    write_log(log_path, key, n=2)
    with AuditLog(log_path, key) as log:
        assert log.head.seq == 2
        log.append(audit.AGENT_STARTED, version="0.1.0")
    assert verify_log(log_path, key.public_key()).lines == 4


def test_tampered_field_is_reported(log_path, key):
    write_log(log_path, key)
    raw = lines(log_path)
    raw[3] = raw[3].replace(b"dev1-0000000002", b"dev1-0000000099")
    log_path.write_bytes(b"".join(raw))
    report = verify_log(log_path, key.public_key())
    assert not report.ok
    assert report.first_bad.line == 4 and "hash mismatch" in report.first_bad.reason
    assert report.lines == 3


def test_tampered_field_with_recomputed_hash_fails_the_signature(log_path, key):
    write_log(log_path, key)
    raw = lines(log_path)
    doc = json.loads(raw[2])
    doc["fields"]["seq"] = 42
    body = {k: v for k, v in doc.items() if k not in ("hash", "sig")}
    doc["hash"] = audit.hashlib.sha256(audit.canonical_json(body)).hexdigest()
    raw[2] = audit.canonical_json(doc) + b"\n"
    log_path.write_bytes(b"".join(raw))
    report = verify_log(log_path, key.public_key())
    assert report.first_bad.line == 3 and "signature invalid" in report.first_bad.reason


def test_deleted_middle_line_is_reported(log_path, key):
    write_log(log_path, key)
    raw = lines(log_path)
    del raw[2]
    log_path.write_bytes(b"".join(raw))
    report = verify_log(log_path, key.public_key())
    assert report.first_bad.line == 3 and "chain broken" in report.first_bad.reason


def test_reordered_lines_are_reported(log_path, key):
    write_log(log_path, key)
    raw = lines(log_path)
    raw[2], raw[3] = raw[3], raw[2]
    log_path.write_bytes(b"".join(raw))
    assert "chain broken" in verify_log(log_path, key.public_key()).first_bad.reason


def test_truncation_mid_line_is_reported(log_path, key):
    write_log(log_path, key)
    data = log_path.read_bytes()
    log_path.write_bytes(data[:-40])
    report = verify_log(log_path, key.public_key())
    assert report.first_bad.line == 6 and "incomplete last line" in report.first_bad.reason


def test_truncation_at_a_line_boundary_is_caught_by_the_published_head(log_path, key):
    head = write_log(log_path, key)
    log_path.write_bytes(b"".join(lines(log_path)[:-2]))
    assert verify_log(log_path, key.public_key()).ok  # the file alone cannot show it ...
    report = verify_log(log_path, key.public_key(), expected_head=head)
    assert not report.ok and "truncated" in report.first_bad.reason  # ... the published head does


def test_replaced_log_is_caught_by_the_published_head(log_path, key, tmp_path):
    head = write_log(log_path, key)
    write_log(log_path.with_name("other.jsonl"), key, note="edited")  # same length, other content
    report = verify_log(log_path.with_name("other.jsonl"), key.public_key(), expected_head=head)
    assert not report.ok and "replaced" in report.first_bad.reason


def test_other_key_is_reported(log_path, key):
    write_log(log_path, key)
    report = verify_log(log_path, Ed25519PrivateKey.generate().public_key())
    assert report.first_bad.line == 1 and "signature invalid" in report.first_bad.reason


@pytest.mark.parametrize("damage", ["torn", "zeros"])
def test_torn_last_line_is_kept_marked_and_the_chain_continues(log_path, key, damage):
    write_log(log_path, key)
    data = log_path.read_bytes()
    if damage == "torn":
        data = data[:-57]                  # power loss in the middle of the last write
    else:
        data = data + b"\0" * 4096         # ext4 delayed allocation: a block of zeros at the end
    log_path.write_bytes(data)

    with AuditLog(log_path, key) as log:
        log.append(audit.AGENT_STARTED, version="0.1.0")
        head = log.head
    assert log_path.read_bytes().startswith(data)  # history is not rewritten
    marker = json.loads(lines(log_path)[-2])
    assert marker["event"] == audit.LOG_RECOVERED
    assert marker["fields"]["skipped_bytes"] == (4096 if damage == "zeros" else len(data) - data.rfind(b"\n") - 1)
    assert ("zero bytes" if damage == "zeros" else "incomplete last line") in marker["fields"]["reason"]

    report = verify_log(log_path, key.public_key(), expected_head=head)
    assert report.ok, report.summary()
    assert len(report.recoveries) == 1 and report.head == head
    assert head.seq == (6 if damage == "zeros" else 5) + 1


def test_recorded_torn_bytes_cannot_be_swapped_later(log_path, key):
    write_log(log_path, key)
    log_path.write_bytes(log_path.read_bytes()[:-57])
    AuditLog(log_path, key).close()
    raw = lines(log_path)
    raw[-2] = b"X" + raw[-2][1:]  # someone edits the recorded junk
    log_path.write_bytes(b"".join(raw))
    assert not verify_log(log_path, key.public_key()).ok


def test_log_signed_by_another_key_is_not_continued(log_path, key):
    write_log(log_path, key)
    before = log_path.read_bytes()
    with pytest.raises(AuditKeyMismatchError, match="not signed by this device's key"):
        AuditLog(log_path, Ed25519PrivateKey.generate())
    assert log_path.read_bytes() == before


def test_bad_event_and_fields_are_refused(log_path, key):
    with AuditLog(log_path, key) as log:
        with pytest.raises(AuditError, match="event name"):
            log.append("Recording Started")
        with pytest.raises(AuditError, match="JSON values"):
            log.append(audit.COMMAND_RECEIVED, payload=b"bytes")
        with pytest.raises(AuditError, match="JSON values"):
            log.append(audit.COMMAND_RECEIVED, value=float("nan"))
        assert log.head.seq == 0
    assert verify_log(log_path, key.public_key()).ok


def test_several_events_go_in_one_write_and_one_fsync_as_chained_lines(log_path, key, monkeypatch):
    with AuditLog(log_path, key) as log:
        syncs = []
        real_fsync = audit.os.fsync
        monkeypatch.setattr(audit.os, "fsync", lambda fd: syncs.append(fd) or real_fsync(fd))
        head = log.append_many([(audit.SEGMENT_SEALED, {"stem": f"dev1-{i:010d}"}) for i in range(3)])
        assert head.seq == 3 and len(syncs) == 1
        with pytest.raises(AuditError, match="JSON values"):  # one bad event: none of them is written
            log.append_many([(audit.SEGMENT_SEALED, {"seq": 4}), (audit.SEGMENT_SEALED, {"x": b"bytes"})])
        with pytest.raises(AuditError, match="event name"):
            log.append_many([(audit.SEGMENT_SEALED, {}), ("Not An Event", {})])
        assert log.head == head and log.append_many([]) == head
    report = verify_log(log_path, key.public_key(), expected_head=head)
    assert report.ok and report.lines == 4
    assert [json.loads(x)["fields"]["stem"] for x in lines(log_path)[1:]] == [f"dev1-{i:010d}" for i in range(3)]


def test_concurrent_appends_keep_one_chain(log_path, key):
    with AuditLog(log_path, key) as log:
        def worker(n):
            for i in range(25):
                log.append(audit.BUTTON_GESTURE, worker=n, i=i)
        threads = [threading.Thread(target=worker, args=(n,), name=f"AuditTestThread-{n}") for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert log.head.seq == 100
    report = verify_log(log_path, key.public_key())
    assert report.ok and report.lines == 101


def test_failed_write_is_marked_before_the_next_event(log_path, key, monkeypatch):
    log = AuditLog(log_path, key)
    real_write = audit.os.write

    def half_then_full(fd, data):
        real_write(fd, bytes(data[:20]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(audit.os, "write", half_then_full)
    with pytest.raises(StorageFullError, match="storage full while writing audit event"):
        log.append(audit.RECORDING_STARTED, trigger="button")
    monkeypatch.setattr(audit.os, "write", real_write)
    log.append(audit.RECORDING_STARTED, trigger="button")
    log.close()
    report = verify_log(log_path, key.public_key())
    assert report.ok and len(report.recoveries) == 1
    assert "half-way" in json.loads(lines(log_path)[-2])["fields"]["reason"]


# -- the writer thread: lines from threads that must not wait for the card ------------------------------------

def test_the_writer_keeps_the_order_and_its_caller_never_waits_for_the_card(log_path, key, monkeypatch):
    log = AuditLog(log_path, key)
    writer = audit.AuditWriter(log)
    writer.start()
    card = threading.Event()  # the card stalls until set
    real_fsync = audit.os.fsync
    monkeypatch.setattr(audit.os, "fsync", lambda fd: (card.wait(10), real_fsync(fd)))
    for i in range(20):
        writer.append(audit.RECORDING_STARTED, incident_id=f"inc-{i}", trigger="button")
    assert writer.written == 0  # every hand-over returned while the card was stalled
    card.set()
    assert writer.flush(10)
    writer.stop()
    log.close()
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert [line["fields"]["incident_id"] for line in lines[1:]] == [f"inc-{i}" for i in range(20)]
    assert verify_log(log_path, key.public_key()).ok and writer.written == 20


def test_a_line_the_card_refuses_is_a_visible_fault_until_one_is_written(log_path, key, monkeypatch, caplog):
    log = AuditLog(log_path, key)
    writer = audit.AuditWriter(log)
    writer.start()
    real_write = audit.os.write

    def full(fd, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(audit.os, "write", full)
    writer.append(audit.FRAMES_DROPPED, count=3, incident_id="inc-1")
    assert writer.flush(10)
    assert isinstance(writer.fault, StorageFullError)
    assert "frames_dropped" in caplog.text and "not written" in caplog.text
    monkeypatch.setattr(audit.os, "write", real_write)
    writer.append(audit.FRAMES_DROPPED, count=1, incident_id="inc-1")
    writer.stop()
    log.close()
    assert writer.fault is None and writer.written == 1
    assert verify_log(log_path, key.public_key()).ok


def test_a_bad_event_name_is_refused_on_the_callers_thread(log_path, key):
    with AuditLog(log_path, key) as log:
        writer = audit.AuditWriter(log)
        with pytest.raises(AuditError, match="audit event name"):
            writer.append("Not An Event")
        writer.stop()  # never started: stop writes what is queued on this thread
