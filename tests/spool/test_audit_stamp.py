"""The audit log's stamp: lines written while an officer is assigned name the officer, and exactly those."""

from __future__ import annotations

import json
import threading

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from evidence import audit
from evidence.audit import AuditError, AuditLog, AuditWriter, verify_log


@pytest.fixture
def key():
    return Ed25519PrivateKey.generate()


def entries(path):
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def test_lines_between_assignment_and_unassignment_carry_the_officer(tmp_path, key):
    path = tmp_path / "audit.jsonl"
    with AuditLog(path, key) as log:
        log.append(audit.AGENT_STARTED, version="x")
        log.restamp({"officer": "ko-17"}, audit.OFFICER_ASSIGNED, officer="ko-17", via="badge")
        log.append(audit.RECORDING_STARTED, incident_id="i1", trigger="button")
        log.restamp({"officer": "ko-18"}, audit.OFFICER_ASSIGNED, officer="ko-18", via="command", previous="ko-17")
        log.append(audit.RECORDING_STOPPED, incident_id="i1", reason="button", officer="explicit")
        log.restamp({}, audit.OFFICER_UNASSIGNED, officer="ko-18", via="dock")
        log.append(audit.AGENT_STOPPED)
        assert log.stamp == {}
    assert verify_log(path, key.public_key()).ok
    seen = [(e["event"], e["fields"].get("officer")) for e in entries(path)]
    assert seen == [(audit.LOG_CREATED, None), (audit.AGENT_STARTED, None), (audit.OFFICER_ASSIGNED, "ko-17"),
                    (audit.RECORDING_STARTED, "ko-17"), (audit.OFFICER_ASSIGNED, "ko-18"),
                    (audit.RECORDING_STOPPED, "explicit"),  # a line's own field wins
                    (audit.OFFICER_UNASSIGNED, "ko-18"), (audit.AGENT_STOPPED, None)]


def test_the_audit_writer_stamps_at_write_time_in_file_order(tmp_path, key):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, key)
    writer = AuditWriter(log)
    writer.start()

    def lines_from_another_thread():
        for _ in range(100):
            writer.append(audit.FRAMES_DROPPED, count=1)

    threads = [threading.Thread(target=lines_from_another_thread) for _ in range(2)]
    for t in threads:
        t.start()
    for i in range(20):
        log.restamp({"officer": f"ko-{i}"}, audit.OFFICER_ASSIGNED, officer=f"ko-{i}", via="command")
    for t in threads:
        t.join()
    assert writer.flush()
    writer.stop()
    log.close()
    assert sum(e["event"] == audit.FRAMES_DROPPED for e in entries(path)) == 200
    current = None
    for e in entries(path):  # every line names the officer of the last assignment line before it
        if e["event"] == audit.OFFICER_ASSIGNED:
            current = e["fields"]["officer"]
        elif e["event"] == audit.FRAMES_DROPPED:
            assert e["fields"].get("officer") == current


def test_a_stamp_that_is_not_json_changes_nothing(tmp_path, key):
    path = tmp_path / "audit.jsonl"
    with AuditLog(path, key) as log:
        with pytest.raises(AuditError, match="stamp"):
            log.restamp({"officer": object()}, audit.OFFICER_ASSIGNED, officer="x")
        assert log.stamp == {} and log.head.seq == 0
