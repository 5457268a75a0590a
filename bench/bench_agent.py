"""The whole agent in simulation: 1080p30 10 Mbit/s replayed in real time, recording continuously with a
30 s pre-event window, sealing and uploading to a local broker and receiver.

Reproduce:  .venv/bin/python bench/bench_agent.py [--seconds 60] [--pre-event 30] [--audio]

The agent runs as its own process (`bodycam run`) exactly as the service does; a local back office
(mosquitto + receiver, backoffice.localoffice) runs in this process. After a 35 s standby (the pre-event
window fills, the replay clip is encoded) a signed START command begins a recording that lasts the
measured window. Reported: the agent process's CPU share of one core over the window (from
/proc/<pid>/stat), its largest RSS during the window and its peak RSS over its whole life (VmHWM),
against the targets of 15 % and 150 MB. The synthetic camera's replay stands in for the Pi's hardware
encoder: its clip is encoded once by a child process, so encoding is not counted, as on the Pi. With
``--audio`` the test tone is rendered and encoded by another child all along; its CPU and RSS are
reported apart, never hidden.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import os
import queue
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from agent import config  # noqa: E402
from agent.demo import prepare_workdir  # noqa: E402
from comms.commands import sign_command  # noqa: E402
from backoffice.localoffice import LocalBackOffice, client_settings  # noqa: E402
from comms.mqtt import Connected, Message, MqttLink  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds of each live child of ``pid`` (the synthetic camera's sound process, when there is one)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if int(fields[1]) == pid:
            found[int(stat.parent.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return found


def rss(pid: int, field: str) -> int:
    """VmRSS (now) or VmHWM (peak) of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0, help="measured recording window")
    parser.add_argument("--pre-event", type=float, default=30.0)
    parser.add_argument("--segments-ahead", type=int, default=4, help="uplink.segments_ahead (segments open at once)")
    parser.add_argument("--audio", action="store_true", help="record sound too (the synthetic AAC track)")
    args = parser.parse_args()
    print(f"command: .venv/bin/python bench/bench_agent.py --seconds {args.seconds:g} --pre-event {args.pre_event:g} "
          f"--segments-ahead {args.segments_ahead}" + (" --audio" if args.audio else ""),
          flush=True)
    measure(args.seconds, args.pre_event, args.segments_ahead, args.audio)


def measure(seconds: float, pre_event: float, segments_ahead: int = 4, audio: bool = False,
            preload_av: bool = False) -> dict:
    """One run; prints the figures and returns them (cpu_share, steady_rss, peak_rss, stored).

    ``preload_av`` imports PyAV in the agent's process before it starts, as picamera2 does on the Pi
    (its encoders import ``av``), so a comparison with and without sound counts what sound adds there.
    """
    args = argparse.Namespace(seconds=seconds, pre_event=pre_event, segments_ahead=segments_ahead)
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        root = Path(tmp)
        cfg = config.replace(config.Config(), "device", id="bench-01", site="bench")
        cfg = prepare_workdir(cfg, root)
        cfg = config.replace(cfg, "camera", backend="synthetic", width=1920, height=1080, fps=30.0,
                             bitrate=10_000_000, synthetic_realtime=True, synthetic_replay_seconds=10.0)
        cfg = config.replace(cfg, "recording", pre_event_seconds=args.pre_event)
        cfg = config.replace(cfg, "audio", enabled=audio)
        cfg = config.replace(cfg, "controls", pin_factory="mock")
        cfg = config.replace(cfg, "runtime", status_file=str(root / "status.json"))
        key = Ed25519PrivateKey.generate()
        (root / "command.pub").write_text("ed25519:" + base64.b64encode(key.public_key().public_bytes_raw()).decode())
        office = LocalBackOffice(root / "backoffice", [Path(cfg.evidence.device_key).with_suffix(".pub")]).start()
        proc = None
        try:
            cfg = config.replace(cfg, "mqtt", **dataclasses.asdict(office.device_settings(cfg.device.id)))
            cfg = config.replace(cfg, "uplink", enabled=True, receipt_key=str(office.receipt_pub),
                                 segments_ahead=args.segments_ahead)
            cfg = config.replace(cfg, "commands", public_key=str(root / "command.pub"),
                                 pre_event_max_seconds=args.pre_event)
            (root / "agent.toml").write_text(config.dumps(cfg))
            run = [sys.executable, "-m", "agent.cli"] if not preload_av else [
                sys.executable, "-c", "import sys, av; from agent.cli import main; sys.exit(main(sys.argv[1:]))"]
            proc = subprocess.Popen(run + ["run", "--config", str(root / "agent.toml")],
                                    stderr=open(root / "agent.log", "w"))
            control = MqttLink(client_settings(office.pki.issue("control-room"), office.broker.port), "control-room")
            inbox: queue.Queue = queue.Queue()
            control.add_listener(inbox, ("bodycam/bench/bench-01/cmd/result",))
            control.start()
            while not isinstance(inbox.get(timeout=15), Connected):
                pass
            control.subscribe([("bodycam/bench/bench-01/cmd/result", 1)])
            time.sleep(args.pre_event + 5)
            control.publish("bodycam/bench/bench-01/cmd", sign_command(key, "bench-01", "start"), qos=1)
            item = inbox.get(timeout=15)
            while not isinstance(item, Message):
                item = inbox.get(timeout=15)
            print(f"start command answered: {item.payload.decode()}", flush=True)
            time.sleep(2.0)
            c0, k0, t0 = cpu_seconds(proc.pid), children_cpu_seconds(proc.pid), time.monotonic()
            steady = 0
            while time.monotonic() - t0 < args.seconds:
                time.sleep(1.0)
                steady = max(steady, rss(proc.pid, "VmRSS"))
            c1, k1, t1 = cpu_seconds(proc.pid), children_cpu_seconds(proc.pid), time.monotonic()
            children = sum(k1[child] - k0[child] for child in k1.keys() & k0.keys()) / (t1 - t0)
            children_rss = sum(rss(child, "VmRSS") for child in k1)
            peak = rss(proc.pid, "VmHWM")
            stored = len(list(office.store.root.rglob("*.age")))
            control.stop()
            share = (c1 - c0) / (t1 - t0)
            print(f"agent CPU while recording and uploading: {share * 100:.1f} % of one core "
                  f"({c1 - c0:.1f} CPU-s over {t1 - t0:.0f} s) -> {'OK' if share <= 0.15 else 'over'} (target <= 15 %)")
            print(f"agent RSS while recording and uploading: max {steady / 1e6:.0f} MB -> "
                  f"{'OK' if steady <= 150e6 else 'over'} (target <= 150 MB)")
            print(f"agent peak RSS over its life (VmHWM): {peak / 1e6:.0f} MB -> "
                  f"{'OK' if peak <= 150e6 else 'over'} (target <= 150 MB; the replay clip is encoded by a child "
                  "process, as the Pi's hardware encoder works outside the agent's process)")
            print(f"segments stored at the receiver meanwhile: {stored}")
            print(f"the agent's child processes meanwhile (the synthetic sound's encoder): {children * 100:.2f} % "
                  f"of one core, RSS {children_rss / 1e6:.0f} MB")
            return {"cpu_share": share, "steady_rss": steady, "peak_rss": peak, "stored": stored,
                    "children_cpu_share": children, "children_rss": children_rss}
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(30)
            office.stop()


if __name__ == "__main__":
    main()
