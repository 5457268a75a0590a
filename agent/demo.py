"""`bodycam demo`: the device's chain on a laptop, in real time, with nothing to set up.

In a work directory it makes a municipality key pair (``backoffice/``) and a device key (``device/``),
then runs the real pipeline: the synthetic camera fills the pre-event ring, a recording is triggered
as the button would, segments are cut, sealed to the municipality's key and stored in the device's
spool. With mosquitto installed, the back office runs beside it as its own program (a child process:
broker with client certificates, the real receiver and its evidence catalog), and the device uploads to it. Then, as the
back office would, it verifies the store with the device's public key and exports the incident to an
MP4 with the private key. Plaintext video never touches the disk on the
device side; only the exported MP4 in ``backoffice/`` is plaintext, as at the real back office.
"""

from __future__ import annotations

import json
import logging
import select
import subprocess
import sys
import time
from pathlib import Path

from evidence.export import export_incident
from evidence.keys import generate_device_key, generate_evidence_keys, load_device_public_keys, load_evidence_identities
from evidence.verify import verify_paths

from .config import Config, replace
from .recorder import Action, Trigger
from .runtime import Agent

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
    config = replace(config, "uplink", enabled=False)  # run_demo turns it on once its local broker runs
    return replace(config, "storage", spool_dir=str(device / "spool"), audit_log=str(device / "audit" / "audit.jsonl"),
                   warn_free_mib=min(config.storage.warn_free_mib, 512.0),
                   critical_free_mib=min(config.storage.critical_free_mib, 128.0))


def emulated_display(config: Config, workdir: Path) -> Config:
    """The display as a GIF in ``workdir``, showing the panel the config names (its kind and size), e.g. a
    colour TFT after ``bodycam demo --panel st7789``."""
    return replace(config, "display", driver="emulator", panel=config.display.pixels,
                   emulator_path=str(Path(workdir) / "display.gif"))


def run_demo(config: Config, standby_s: float, record_s: float, workdir: Path, out=None) -> int:
    out = out or sys.stdout  # looked up at call time, so redirection after import still applies
    workdir = Path(workdir)
    config = prepare_workdir(config, workdir)
    config = replace(config, "camera", backend="synthetic", synthetic_realtime=True)
    config = emulated_display(config, workdir)
    config = replace(config, "controls", pin_factory="mock")
    config = replace(config, "runtime", status_file=str(workdir / "device" / "status.json"))
    config = replace(config, "commands", enabled=False)
    rec, cam = config.recording, config.camera
    print(f"camera: synthetic {cam.width}x{cam.height} @ {cam.fps:g} fps, {cam.bitrate / 1e6:g} Mbit/s, "
          f"keyframe every {cam.keyframe_interval} frames", file=out)
    print(f"pre-event window {rec.pre_event_seconds:g} s, segments of {rec.segment_seconds:g} s; "
          f"standby {standby_s:g} s, then recording {record_s:g} s", file=out)
    office = BackOfficeProcess(workdir / "backoffice", Path(config.evidence.device_key).with_suffix(".pub"),
                               config.device.id)
    if office.ready is not None:
        ready = office.ready
        print(f"local back office: mosquitto with client certificates on {ready['host']}:{ready['port']}, "
              f"receiver {ready['store']} (its own process, as in a city)", file=out)
        if ready.get("catalog"):
            print(f"catalog: {ready['catalog']} (each stored segment is recorded before its receipt; the review "
                  f"app reads it with BODYCAM_OFFICE_DATA={ready['office_data']} "
                  f"BODYCAM_OFFICE_STORE={ready['store']})", file=out)
        else:
            print(f"no catalog: {ready.get('catalog_problem') or 'this back office keeps none'}", file=out)
        config = replace(config, "mqtt", host=ready["host"], port=ready["port"], keepalive_s=10,
                         reconnect_min_s=0.2, reconnect_max_s=2.0, **ready["devices"][config.device.id])
        config = replace(config, "uplink", enabled=True, receipt_key=ready["receipt_pub"])
    else:
        print(f"no transfer in this demo ({office.error}); the back office reads the device's spool", file=out)
        office = None
    incident = None
    try:
        agent = Agent(config)
        agent.start()
        try:
            status = lambda: agent.recorder_thread.status  # noqa: E731
            _progress(status, agent, standby_s, out)
            agent.trigger(Trigger(Action.START, "demo"))
            _progress(status, agent, record_s, out)
            incident = status().incident_id
            agent.trigger(Trigger(Action.STOP, "demo"))
            _progress(status, agent, rec.post_event_seconds + 1.0, out)
            lost = status().frames_lost
            drained = True
            if office is not None:
                print("waiting for the back office's receipts ...", file=out)
                drained = _wait_for_receipts(agent, 60.0)
        finally:
            agent.stop()
    finally:
        if office is not None:
            office.stop()
    print(f"front display (emulated): {config.display.emulator_path}", file=out)
    if incident is None:
        print("no recording was made", file=out)
        return 1
    if not drained:
        print("the transfer did not finish within 60 s; the device keeps every segment", file=out)
    left = list(Path(config.storage.spool_dir).glob("*.age"))
    store = Path(office.ready["store"]) if office is not None else Path(config.storage.spool_dir)
    if office is not None:
        print(f"device spool after the receipts: {len(left)} segment(s) left (purge_policy "
              f"{config.storage.purge_policy})", file=out)
    return max(_back_office(config, workdir, store, incident, lost, out), 0 if drained else 1)


class BackOfficeProcess:
    """The local back office as its own program (``python -m backoffice.localoffice``), as in a city.

    The device program never imports the back office; it starts it, reads its one "ready" line (broker
    port, the device's certificate, the receipt key) and stops it by closing its standard input.
    """

    def __init__(self, root: Path, device_pub: Path, device_id: str, timeout: float = 30.0):
        self.ready: dict | None = None
        self.error = ""
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "backoffice.localoffice", "--root", str(root), "--device-pub", str(device_pub),
             "--device-id", device_id], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        readable, _, _ = select.select([self._proc.stdout], [], [], timeout)
        line = self._proc.stdout.readline() if readable else ""
        try:
            doc = json.loads(line) if line else {"error": f"no answer within {timeout:g} s"}
        except ValueError:
            doc = {"error": f"unexpected answer {line[:200]!r}"}
        if "error" in doc:
            self.error = doc["error"]
            self.stop()
        else:
            self.ready = doc

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


def _wait_for_receipts(agent, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if agent.stage.spool.backlog().count == 0 and agent.sealer.sealed > 0:
            return True
        time.sleep(0.2)
    return False


def _back_office(config: Config, workdir: Path, store: Path, incident: str, lost: int, out) -> int:
    """What the municipality does with the received files: verify without keys, export, check the video."""
    from camera.decode import decode_mp4_frame_numbers

    device_pub = Path(config.evidence.device_key).with_suffix(".pub")
    devices = load_device_public_keys([device_pub])
    report = verify_paths([store], devices)
    print(f"verify {store} (device public key only): {'OK' if report.ok else 'FAILED'}", file=out)
    for line in report.lines():
        print(f"  {line}", file=out)
    if not report.ok:
        return 1
    for result in report.incidents()[(config.device.id, incident)]:
        m = result.manifest
        print(f"  segment {m.segment_index}: {m.frame_count:4d} frames, pre-event {m.pre_event_frames:3d}, "
              f"{m.start_time} .. {m.end_time}{', final' if m.final else ''}", file=out)
    target = workdir / "backoffice" / f"{incident}.mp4"
    result = export_incident([store], devices=devices, out=target, incident_id=incident,
                             identities=load_evidence_identities(workdir / "backoffice" / "evidence.key"))
    numbers = decode_mp4_frame_numbers(result.mp4_path)
    continuous = bool(numbers) and numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    print(f"exported with the municipality's private key: {result.mp4_path}", file=out)
    print(f"  report: {result.report_path}", file=out)
    print(f"incident {incident}: {len(numbers)} frames decoded from the MP4, frames {numbers[0]}..{numbers[-1]}, "
          f"{'continuous' if continuous else 'NOT continuous'}; frames lost: {lost}", file=out)
    print(f"results in {workdir}: backoffice/ (evidence.key, evidence.pub, store/ of received segments, "
          f"exports, receipt key, broker), device/ (keys, spool, state, signed audit log, status.json), "
          f"display.gif", file=out)
    return 0 if continuous and lost == 0 else 1


def _progress(status, agent, seconds: float, out) -> None:
    """A live status line on a terminal; one line per second into a log or pipe."""
    tty = out.isatty()
    end = time.monotonic() + seconds
    while True:
        st = status()
        ring = st.ring
        elapsed = f"{time.time() - st.recording_since:5.1f} s" if st.recording_since else "      "
        line = (f"  {st.state.value:<10}{elapsed} ring {ring.seconds_held:5.1f} s / "
                f"{ring.memory_bytes / 2**20:6.1f} MiB  segments {st.segments_emitted:3d}  "
                f"lost frames {st.frames_lost}  uploaded {_uploaded(agent)}")
        print("\r" + line if tty else line, end="" if tty else "\n", file=out, flush=True)
        left = end - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(0.25 if tty else 1.0, left))
    if tty:
        print("", file=out)


def _uploaded(agent) -> str:
    if agent.uplink is None:
        return "-"
    up = agent.uplink.status.as_dict()
    return f"{up.get('segments_acknowledged', 0)} acked, link {'up' if up.get('link_up') else 'down'}"
