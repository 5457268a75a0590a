"""`bodycam demo`: the device's chain on a laptop, in real time, with nothing to set up.

In a work directory it makes a municipality key pair (``backoffice/``) and a device key (``device/``),
then runs the real pipeline: the synthetic camera fills the pre-event ring, a recording is triggered
as the button would, segments are cut, sealed to the municipality's key and stored in the device's
spool. Then, as the back office would, it verifies the spool with the device's public key and
exports the incident to an MP4 with the private key. Plaintext video never touches the disk on the
device side; only the exported MP4 in ``backoffice/`` is plaintext, as at the real back office.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time

from pathlib import Path

from camera.ring import PreEventRing
from camera.source import open_source

from .config import Config, replace
from .export import export_incident
from .keys import generate_device_key, generate_evidence_keys, load_device_public_keys, load_evidence_identities
from .pipeline import RecorderThread
from .recorder import Action, Recorder, Trigger
from .sealing import EvidenceStage, SealerThread
from .verify import verify_paths

logger = logging.getLogger(__name__)


def prepare_workdir(config: Config, workdir: Path) -> Config:
    """Keys for a demo municipality and device (kept across runs), and a config that points at them."""
    backoffice, device = workdir / "backoffice", workdir / "device"
    for folder in (backoffice, device / "keys"):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not (backoffice / "evidence.pub").exists():
        generate_evidence_keys(backoffice)
    if not (device / "keys" / "device.key").exists():
        generate_device_key(device / "keys", device_id=config.device.id)
    config = replace(config, "evidence", recipients=(str(backoffice / "evidence.pub"),),
                     device_key=str(device / "keys" / "device.key"), state_dir=str(device / "state"))
    return replace(config, "storage", spool_dir=str(device / "spool"), audit_log=str(device / "audit" / "audit.jsonl"),
                   warn_free_mib=min(config.storage.warn_free_mib, 512.0),
                   critical_free_mib=min(config.storage.critical_free_mib, 128.0))


def run_demo(config: Config, standby_s: float, record_s: float, workdir: Path, out=None) -> int:
    out = out or sys.stdout  # looked up at call time, so redirection after import still applies
    workdir = Path(workdir)
    config = prepare_workdir(config, workdir)
    camera = dataclasses.replace(config.camera, backend="synthetic", synthetic_realtime=True)
    rec = config.recording
    source = open_source(camera)
    stage = EvidenceStage(config)
    sealer = SealerThread(stage)
    segments = []

    def sink(segment):
        segments.append(segment)
        sealer.put(segment)

    recorder = Recorder(source.info, PreEventRing(rec.pre_event_seconds, int(rec.pre_event_max_mib * 2**20)),
                        rec.segment_seconds, sink, rec.post_event_seconds, source.request_keyframe,
                        stage.storage_gate)
    recorder.subscribe(stage.record_event)
    thread = RecorderThread(recorder, round(rec.capture_queue_seconds * camera.fps))
    info = source.info
    print(f"camera: synthetic {info.width}x{info.height} @ {info.fps:g} fps, {info.bitrate / 1e6:g} Mbit/s, "
          f"keyframe every {info.gop_frames} frames", file=out)
    print(f"pre-event window {rec.pre_event_seconds:g} s, segments of {rec.segment_seconds:g} s; "
          f"standby {standby_s:g} s, then recording {record_s:g} s", file=out)
    sealer.start()
    thread.start()
    source.start(thread.offer)
    try:
        _progress(thread, standby_s, out)
        thread.trigger(Trigger(Action.START, "demo"))
        _progress(thread, record_s, out)
        thread.trigger(Trigger(Action.STOP, "demo"))
        _progress(thread, rec.post_event_seconds + 0.5, out)
    finally:
        source.stop()
        thread.stop()
        sealer.stop()
        stage.close()
    print("", file=out)
    code = _report(segments, thread, out)
    return max(code, _back_office(config, workdir, segments, out)) if segments else code


def _back_office(config: Config, workdir: Path, segments, out) -> int:
    """What the municipality does with the sealed files: verify without keys, then export."""
    device_pub = Path(config.evidence.device_key).with_suffix(".pub")
    devices = load_device_public_keys([device_pub])
    report = verify_paths([config.storage.spool_dir], devices)
    print(f"verify {config.storage.spool_dir} (device public key only): {'OK' if report.ok else 'FAILED'}", file=out)
    for line in report.lines():
        print(f"  {line}", file=out)
    if not report.ok:
        return 1
    incident = segments[0].incident_id
    target = workdir / "backoffice" / f"{incident}.mp4"
    result = export_incident([config.storage.spool_dir], devices=devices, out=target, incident_id=incident,
                             identities=load_evidence_identities(workdir / "backoffice" / "evidence.key"))
    print(f"exported with the municipality's private key: {result.mp4_path}", file=out)
    print(f"  report: {result.report_path}", file=out)
    print(f"results in {workdir}: backoffice/ (evidence.key, evidence.pub, exports), device/ (keys, spool of "
          f"sealed segments, state, signed audit log)", file=out)
    return 0


def _progress(thread: RecorderThread, seconds: float, out) -> None:
    """A live status line on a terminal; one line per second into a log or pipe."""
    tty = out.isatty()
    end = time.monotonic() + seconds
    while True:
        status = thread.status
        ring = status.ring
        elapsed = f"{time.time() - status.recording_since:5.1f} s" if status.recording_since else "      "
        line = (f"  {status.state.value:<10}{elapsed} ring {ring.seconds_held:5.1f} s / "
                f"{ring.memory_bytes / 2**20:6.1f} MiB  segments {status.segments_emitted:3d}  "
                f"lost frames {status.frames_lost}")
        print("\r" + line if tty else line, end="" if tty else "\n", file=out, flush=True)
        left = end - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(0.25 if tty else 1.0, left))
    if tty:
        print("", file=out)


def _report(segments, thread: RecorderThread, out) -> int:
    from camera.decode import decode_frame_numbers

    if not segments:
        print("no segment was recorded", file=out)
        return 1
    ok = True
    previous = None
    for segment in segments:
        numbers = decode_frame_numbers(segment.payload())
        expected = [f.seq for f in segment.frames]
        good = numbers == expected
        joined = previous is None or segment.first_seq == previous + 1 or segment.dropped_frames
        ok &= good and bool(joined)
        previous = segment.last_seq
        print(f"segment {segment.index}: {segment.frame_count:4d} frames, {segment.duration_s:5.2f} s, "
              f"{segment.nbytes / 1e6:5.2f} MB, pre-event {segment.pre_event_frames:3d} frames, "
              f"decodes {'OK' if good else 'FAILED'}{', final' if segment.final else ''}", file=out)
    print(f"incident {segments[0].incident_id}: {len(segments)} segments, frames "
          f"{segments[0].first_seq}..{segments[-1].last_seq}, "
          f"{'continuous' if ok else 'NOT continuous'}; frames lost: {thread.status.frames_lost}", file=out)
    return 0 if ok else 1
