"""The key custodian's decryption over its socket, against the stock ``age`` CLI in the same run.

Reproduce:  .venv/bin/python bench/bench_custodian.py [--iterations 7] [--seconds 10] [--mbit 10] [--viewers 10]

Ours: a client asks the custodian process (``bodycam-office custodian``, started here on a temporary socket)
for one sealed segment with a valid ticket and reads the plaintext to the end. That includes what the
custodian does for every request: check the ticket, verify the segment as ``bodycam verify`` does (hash of
the whole .age file), write and fsync the ``segment_decrypted`` audit line, then decrypt with pyrage while
hashing the file again, in 64 KiB frames over the socket. Theirs: ``age -d -i evidence.key FILE`` to a pipe
that is read and dropped, process start included. Runs alternate; medians are reported. Then ``--viewers``
clients at once, each reading a different segment: the slowest one's time and the aggregate rate, and the
custodian's CPU seconds per segment (from /proc). The payload is random bytes in frame-sized pieces: the
cost does not depend on content.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from backoffice.custody.client import CustodianClient  # noqa: E402
from backoffice.custody.ticket import sign_ticket  # noqa: E402
from camera.frames import EncodedFrame, StreamInfo  # noqa: E402
from camera.segment import Segment  # noqa: E402
from evidence.chain import ChainState  # noqa: E402
from evidence.keys import (generate_device_key, generate_evidence_keys, generate_office_key,  # noqa: E402
                           load_office_signing_key, load_recipients, load_signing_key)
from evidence.seal import Sealer  # noqa: E402

FPS = 30


def make_segment(seconds: float, mbit: float, index: int) -> Segment:
    frames_n = round(seconds * FPS)
    total = round(seconds * mbit * 1e6 / 8)
    data = os.urandom(total)
    size = total // frames_n
    frames = [EncodedFrame(data=data[i * size:(i + 1) * size if i < frames_n - 1 else total],
                           pts_us=round((index * seconds + i / FPS) * 1e6), keyframe=i % FPS == 0,
                           wall_time=1_750_000_000 + index * seconds + i / FPS, seq=index * frames_n + i)
              for i in range(frames_n)]
    info = StreamInfo("h264", 1920, 1080, float(FPS), round(mbit * 1e6), FPS, "bench-random")
    return Segment(incident_id="bench", index=index, frames=tuple(frames), stream=info)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--mbit", type=float, default=10.0)
    parser.add_argument("--viewers", type=int, default=10)
    args = parser.parse_args()
    age = shutil.which("age")
    if age is None:
        print("stock age is not installed (Debian: age)", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="bench-cust-", dir="/tmp"))
    proc = None
    try:
        for d in ("keys", "device", "state", "office"):
            (root / d).mkdir()
        generate_evidence_keys(root / "keys")
        generate_device_key(root / "device", device_id="kod-07")
        generate_office_key(root / "office")
        sealer = Sealer(device_id="kod-07", site="bench", recipients=load_recipients([root / "keys" / "evidence.pub"]),
                        signing_key=load_signing_key(root / "device" / "device.key"), chain=ChainState.load(root / "state"))
        folder = root / "store" / "bench" / "kod-07" / "bench"
        folder.mkdir(parents=True)
        stems = []
        for i in range(max(args.viewers, 1)):
            sealed = sealer.seal(make_segment(args.seconds, args.mbit, i), clock_sync="ntp-synced")
            (folder / sealed.ciphertext_name).write_bytes(sealed.ciphertext)
            (folder / sealed.manifest_name).write_bytes(sealed.manifest)
            sealer.commit(sealed)
            stems.append(sealed.stem)
        plain_mb = round(args.seconds * args.mbit * 1e6 / 8) / 1e6
        sock = root / "c.sock"
        proc = subprocess.Popen([sys.executable, "-m", "backoffice.cli", "custodian", "--socket", str(sock),
                                 "--identity", str(root / "keys" / "evidence.key"),
                                 "--office-key", str(root / "office" / "office.key"),
                                 "--devices", str(root / "device" / "device.pub"), "--store", str(root / "store"),
                                 "--audit-log", str(root / "audit" / "office-audit.jsonl")],
                                cwd=root, env={**os.environ, "PYTHONPATH": str(REPO)}, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not sock.exists():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("the custodian did not start")
            time.sleep(0.05)
        now = datetime.now(timezone.utc)
        ticket = sign_ticket(load_office_signing_key(root / "office" / "office.key"), access=1, user="bench",
                             kind="playback", purpose="benchmark", site="bench", device_id="kod-07",
                             incident_id="bench", stems=stems, issued_at=now, expires_at=now + timedelta(hours=1))
        client = CustodianClient(sock)

        def ours(stem) -> float:
            t = time.perf_counter()
            n = sum(len(c) for c in client.open_segment(ticket, stem))
            assert abs(n / 1e6 - plain_mb) < 1e-3
            return time.perf_counter() - t

        def theirs(stem) -> float:
            t = time.perf_counter()
            with subprocess.Popen([age, "-d", "-i", str(root / "keys" / "evidence.key"), str(folder / f"{stem}.age")],
                                  stdout=subprocess.PIPE) as p:
                while p.stdout.read(1 << 20):
                    pass
            return time.perf_counter() - t

        ours(stems[0])  # warm the page cache and the custodian's imports
        mine, stock, cpu, age_cpu = [], [], [], []
        for _ in range(args.iterations):
            before = cpu_seconds(proc.pid)
            mine.append(ours(stems[0]))
            cpu.append(cpu_seconds(proc.pid) - before)
            before = children_cpu()
            stock.append(theirs(stems[0]))
            age_cpu.append(children_cpu() - before)
        m, s = statistics.median(mine), statistics.median(stock)
        mc, sc = statistics.median(cpu), statistics.median(age_cpu)
        print(f"one segment ({plain_mb:.1f} MB): custodian {m * 1e3:.1f} ms wall ({plain_mb / m:.0f} MB/s), "
              f"{mc * 1e3:.0f} ms CPU; age -d {s * 1e3:.1f} ms wall ({plain_mb / s:.0f} MB/s), {sc * 1e3:.0f} ms CPU; "
              f"ratio custodian/age: wall {s / m * 100:.0f} %, CPU {sc / mc * 100:.0f} %")

        times: dict[int, float] = {}
        barrier = threading.Barrier(args.viewers)

        def viewer(n):
            barrier.wait()
            times[n] = ours(stems[n % len(stems)])

        before = cpu_seconds(proc.pid)
        t0 = time.perf_counter()
        threads = [threading.Thread(target=viewer, args=(n,), name=f"BenchViewer-{n}") for n in range(args.viewers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        used = cpu_seconds(proc.pid) - before
        print(f"{args.viewers} viewers at once: slowest {max(times.values()) * 1e3:.0f} ms, median "
              f"{statistics.median(times.values()) * 1e3:.0f} ms, aggregate {args.viewers * plain_mb / wall:.0f} MB/s, "
              f"custodian CPU {used / args.viewers * 1e3:.0f} ms per segment "
              f"({used / args.viewers / args.seconds * 100:.1f} % of a core per viewer watching in real time)")
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
