"""What the evidence stage does at start-up after a crash: spool recovery in the signed audit log, a lost
manifest quarantined (never deleted), and an incident cut by the restart closed with a signed end marker."""

import json
import os
import time
from pathlib import Path

import pytest

from evidence import audit
from agent import config
from evidence.audit import verify_log
from agent.demo import prepare_workdir
from evidence.keys import load_device_public_keys
from agent.recorder import Action, Recorder, Trigger
from agent.sealing import EvidenceStage, SealerThread
from evidence.verify import parse_time, verify_paths
from camera.ring import PreEventRing


def record(stage, source, frames, seconds=3, stop=True):
    """Record one incident through the real sealer thread; without ``stop`` it is cut off (no final segment)."""
    sealer = SealerThread(stage)
    sealer.start()
    recorder = Recorder(source.info, PreEventRing(1.0, 16 << 20), 2.0, sealer.put, gate=stage.storage_gate,
                        request_keyframe=source.request_keyframe)
    recorder.subscribe(stage.record_event)
    for _ in range(45):
        recorder.handle_frame(next(frames))
    recorder.handle_trigger(Trigger(Action.START, "button"))
    for _ in range(seconds * 30):
        recorder.handle_frame(next(frames))
    if stop:
        recorder.handle_trigger(Trigger(Action.STOP, "button"))
    sealer.stop()
    assert sealer.fault is None
    return recorder


def audit_lines(cfg):
    return [json.loads(line) for line in open(cfg.storage.audit_log)]


def device_key(tmp_path):
    return next(iter(load_device_public_keys([tmp_path / "device" / "keys" / "device.pub"]).values())).key


def test_every_spool_recovery_action_becomes_a_signed_audit_line(tmp_path):
    cfg = prepare_workdir(config.Config(), tmp_path)
    spool = Path(cfg.storage.spool_dir)
    leftovers = []
    for _ in range(20):  # twenty kills in the middle of sealing, each followed by a restart
        stage = EvidenceStage(cfg)
        stem = stage.sealer.next_stem()
        stage.close()
        (spool / f"{stem}.age.tmp").write_bytes(b"age-encryption.org/v1\n" + os.urandom(500))
        leftovers.append(f"{stem}.age.tmp")
    (spool / "dev-x-0000000099.manifest.json").write_bytes(b'{"not": "a manifest"}')  # something to quarantine
    stage = EvidenceStage(cfg)
    stage.close()

    lines = audit_lines(cfg)
    discarded = [line["fields"] for line in lines if line["event"] == audit.SEGMENT_DISCARDED]
    assert [d["name"] for d in discarded] == leftovers
    assert all("interrupted" in d["reason"] for d in discarded)
    quarantined = [line["fields"] for line in lines if line["event"] == audit.SEGMENT_QUARANTINED]
    assert [q["name"] for q in quarantined] == ["dev-x-0000000099.manifest.json"]
    assert verify_log(cfg.storage.audit_log, device_key(tmp_path)).ok


def test_a_sealed_segment_whose_manifest_is_lost_is_quarantined_not_deleted(tmp_path, small_source):
    cfg = prepare_workdir(config.Config(), tmp_path)
    source = small_source()
    frames = source.frames()
    stage = EvidenceStage(cfg)
    record(stage, source, frames, seconds=4)
    stage.close()
    spool = Path(cfg.storage.spool_dir)
    manifests = sorted(spool.glob("*.manifest.json"))
    assert len(manifests) >= 2
    victim = manifests[-1].name.replace(".manifest.json", "")  # the newest: the chain state names it committed
    ciphertext = (spool / f"{victim}.age").read_bytes()
    manifests[-1].unlink()

    stage = EvidenceStage(cfg)
    interrupted = stage.sealer.next_stem()
    stage.close()
    assert (spool / "quarantine" / f"{victim}.age").read_bytes() == ciphertext
    assert not (spool / f"{victim}.age").exists()
    quarantined = [line["fields"] for line in audit_lines(cfg) if line["event"] == audit.SEGMENT_QUARANTINED]
    assert [q["name"] for q in quarantined] == [f"{victim}.age"] and "committed" in quarantined[0]["reason"]

    # The segment being written at a crash (seq one past the chain head) is still an allowed loss.
    (spool / f"{interrupted}.age").write_bytes(b"age-encryption.org/v1\n" + os.urandom(500))
    stage = EvidenceStage(cfg)
    stage.close()
    assert not (spool / f"{interrupted}.age").exists()
    assert not (spool / "quarantine" / f"{interrupted}.age").exists()
    discarded = [line["fields"] for line in audit_lines(cfg) if line["event"] == audit.SEGMENT_DISCARDED]
    assert [d["name"] for d in discarded] == [f"{interrupted}.age"]


def test_an_incident_cut_by_a_restart_is_closed_by_a_signed_end_marker(tmp_path, small_source):
    cfg = prepare_workdir(config.Config(), tmp_path)
    source = small_source()
    frames = source.frames(start_wall=time.time() - 60)  # recorded a minute ago (faster than real time)
    stage = EvidenceStage(cfg)
    recorder = record(stage, source, frames, seconds=5, stop=False)  # the running segment dies with the process
    cut_incident = recorder.incident_id
    stage.close()
    spool = Path(cfg.storage.spool_dir)
    devices = load_device_public_keys([tmp_path / "device" / "keys" / "device.pub"])
    before = verify_paths([spool], devices)
    assert not before.ok and any("no final segment" in line for line in before.lines())

    stage = EvidenceStage(cfg)  # the restart
    marker = stage.cut
    assert marker is not None and stage.sealer.chain.seq == marker.seq
    stage.close()
    report = verify_paths([spool], devices)
    assert report.ok, report.lines()
    [cut] = report.cuts
    last_segment = json.loads((spool / f"{marker.stem[:-10]}{marker.seq - 1:010d}.manifest.json").read_bytes())
    assert (cut.incident_id, cut.reason, cut.last_frame_time) == (cut_incident, "restart", last_segment["end_time"])
    assert cut.lost_up_to_s == pytest.approx(parse_time(cut.restart_time) - parse_time(cut.last_frame_time), abs=1e-3)
    assert 40 < cut.lost_up_to_s < 120 and "cut by device restart at" in cut.message
    lines = audit_lines(cfg)
    assert [line["fields"]["stem"] for line in lines if line["event"] == audit.INCIDENT_CUT] == [marker.stem]

    stage = EvidenceStage(cfg)  # a second restart: the incident is closed already
    assert stage.cut is None
    stage.close()

    (spool / f"{marker.stem}.manifest.json").unlink()  # removing the marker is noticed
    (spool / f"{marker.stem}.age").unlink()
    assert not verify_paths([spool], devices).ok
