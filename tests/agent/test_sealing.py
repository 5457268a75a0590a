"""The device's evidence stage end to end: recorder → SealerThread → spool, checked like the back office."""

import errno
import json
import subprocess
import threading
from pathlib import Path

from evidence import audit
from agent import config
from base.errors import ConfigError
from evidence.audit import verify_log
from agent.demo import prepare_workdir
from base.errors import storage_error
from evidence.keys import load_device_public_keys
from agent.recorder import Action, Recorder, State, Trigger
from agent.sealing import EvidenceStage, SealerThread
from evidence.verify import verify_paths
from camera.ring import PreEventRing


def record_incident(stage, source, frames, seconds=3):
    sealer = SealerThread(stage)
    sealer.start()
    segments = []

    def sink(segment):
        segments.append(segment)
        sealer.put(segment)

    recorder = Recorder(source.info, PreEventRing(1.0, 16 << 20), 2.0, sink, gate=stage.storage_gate,
                        request_keyframe=source.request_keyframe)
    recorder.subscribe(stage.record_event)
    for _ in range(45):
        recorder.handle_frame(next(frames))
    recorder.handle_trigger(Trigger(Action.START, "button"))
    for _ in range(seconds * 30):
        recorder.handle_frame(next(frames))
    recorder.handle_trigger(Trigger(Action.STOP, "button"))
    sealer.stop()
    assert sealer.fault is None and sealer.sealed == len(segments)
    return recorder, segments


def test_segments_are_sealed_stored_verifiable_and_open_with_stock_age(tmp_path, small_source):
    cfg = prepare_workdir(config.Config(), tmp_path)
    source = small_source()
    frames = source.frames()
    stage = EvidenceStage(cfg)
    _, segments = record_incident(stage, source, frames)
    stage.close()

    spool = tmp_path / "device" / "spool"
    manifests = sorted(spool.glob("*.manifest.json"))
    assert len(manifests) == len(segments) >= 2
    devices = load_device_public_keys([tmp_path / "device" / "keys" / "device.pub"])
    report = verify_paths([spool], devices)
    assert report.ok, report.lines()
    for segment, manifest_path in zip(segments, manifests):
        manifest = json.loads(manifest_path.read_bytes())
        assert (manifest["incident_id"], manifest["segment_index"]) == (segment.incident_id, segment.index)
        ciphertext = manifest_path.with_name(manifest_path.name.replace(".manifest.json", ".age"))
        plain = subprocess.run(["age", "-d", "-i", str(tmp_path / "backoffice" / "evidence.key"), str(ciphertext)],
                               capture_output=True, check=True, timeout=60).stdout
        assert plain == segment.payload()
    assert not any(b"\x00\x00\x00\x01" in p.read_bytes()[:4096] for p in spool.glob("*.age"))  # no raw H.264

    key = load_device_public_keys([tmp_path / "device" / "keys" / "device.pub"])
    public = next(iter(key.values())).key
    log = verify_log(cfg.storage.audit_log, public)
    assert log.ok
    events = [json.loads(line)["event"] for line in open(cfg.storage.audit_log)]
    assert events.count(audit.SEGMENT_SEALED) == len(segments)
    assert audit.RECORDING_STARTED in events and audit.RECORDING_STOPPED in events


def test_the_chain_continues_across_a_restart(tmp_path, small_source):
    cfg = prepare_workdir(config.Config(), tmp_path)
    source = small_source()
    frames = source.frames()
    for _ in range(2):  # two agent lifetimes, each opening the stage from disk
        stage = EvidenceStage(cfg)
        record_incident(stage, source, frames, seconds=2)
        stage.close()
    spool = tmp_path / "device" / "spool"
    seqs = [json.loads(p.read_bytes())["seq"] for p in sorted(spool.glob("*.manifest.json"))]
    assert seqs == list(range(1, len(seqs) + 1))
    report = verify_paths([spool], load_device_public_keys([tmp_path / "device" / "keys" / "device.pub"]))
    assert report.ok and len(report.incidents()) == 2


def test_critical_storage_refuses_a_new_recording_with_its_reason(tmp_path, small_source):
    cfg = prepare_workdir(config.Config(), tmp_path)
    cfg = config.replace(cfg, "storage", warn_free_mib=1_048_576.0, critical_free_mib=1_048_576.0)  # 1 TiB
    stage = EvidenceStage(cfg)
    source = small_source()
    recorder = Recorder(source.info, PreEventRing(1.0, 16 << 20), 2.0, lambda s: None, gate=stage.storage_gate)
    recorder.handle_trigger(Trigger(Action.START, "button"))
    stage.close()
    assert recorder.state is State.STANDBY
    assert recorder.refused_reason and "free" in recorder.refused_reason.lower()


def test_missing_recipients_is_a_clear_error(tmp_path):
    cfg = config.replace(prepare_workdir(config.Config(), tmp_path), "evidence", recipients=())
    try:
        EvidenceStage(cfg)
    except ConfigError as exc:
        assert "evidence.recipients is empty" in str(exc)
    else:
        raise AssertionError("EvidenceStage opened without recipients")


def test_a_changed_recipient_or_device_key_is_audited(tmp_path):
    from evidence.keys import generate_evidence_keys

    cfg = prepare_workdir(config.Config(), tmp_path)
    EvidenceStage(cfg).close()
    (tmp_path / "escrow").mkdir()
    escrow = generate_evidence_keys(tmp_path / "escrow")
    cfg = config.replace(cfg, "evidence", recipients=cfg.evidence.recipients + (str(escrow.recipient_path),))
    stage = EvidenceStage(cfg)
    stage.close()
    stage = EvidenceStage(cfg)  # unchanged keys: nothing new
    stage.close()
    changes = [json.loads(line)["fields"] for line in open(cfg.storage.audit_log)
               if json.loads(line)["event"] == audit.KEY_CHANGED]
    assert len(changes) == 1 and changes[0]["which"] == "recipients"
    assert len(changes[0]["new_id"]) == 2 and len(changes[0]["old_id"]) == 1


def test_a_sealer_facing_a_card_that_keeps_refusing_stops_within_its_bound_and_reports_the_loss(
        tmp_path, small_source):
    cfg = prepare_workdir(config.Config(), tmp_path)
    stage = EvidenceStage(cfg)
    stage.spool.begin = refuse_writes  # the card went read-only: every store fails, for good
    source = small_source()
    segments = []
    recorder = Recorder(source.info, PreEventRing(1.0, 16 << 20), 2.0, segments.append)
    recorder.handle_trigger(Trigger(Action.START, "button"))
    for frame in source.frames(300):  # 10 s: five segments, more than the sealer's queue holds
        recorder.handle_frame(frame)
    recorder.handle_trigger(Trigger(Action.STOP, "button"))
    sealer = SealerThread(stage)
    sealer.start()
    recorder_side = threading.Thread(target=lambda: [sealer.put(s) for s in segments], daemon=True)
    recorder_side.start()  # blocks once the queue is full: the back-pressure on the recorder
    recorder_side.join(1.0)
    assert recorder_side.is_alive() and sealer.fault is not None

    stopping = threading.Thread(target=sealer.stop, kwargs={"timeout": 1.0}, daemon=True)
    stopping.start()
    stopping.join(30)
    assert not stopping.is_alive(), "SealerThread.stop() waits forever on a full queue"
    recorder_side.join(10)
    assert not recorder_side.is_alive()  # the recorder's hand-over returned too
    assert not sealer.is_alive()
    stage.close()
    # every segment not stored is reported as lost, in the audit log too; nothing was stored or deleted
    assert sealer.lost == len(segments) >= 4 and sealer.sealed == 0
    lines = [json.loads(line) for line in Path(cfg.storage.audit_log).read_text().splitlines()]
    lost = [line["fields"] for line in lines if line["event"] == audit.SEGMENT_LOST]
    assert sorted(f["segment_index"] for f in lost) == [s.index for s in segments]
    key = next(iter(load_device_public_keys([tmp_path / "device" / "keys" / "device.pub"]).values())).key
    assert verify_log(cfg.storage.audit_log, key).ok


def refuse_writes(stem):
    raise storage_error(OSError(errno.EROFS, "Read-only file system"), stem, f"writing segment {stem}")
