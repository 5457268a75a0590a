"""Sealing cost of 10 s segments of a 10 Mbit/s stream, against the stock ``age`` CLI in the same run.

Reproduce:  .venv/bin/python bench/bench_seal.py [--iterations 10] [--dir /var/tmp] [--seconds 10] [--mbit 10]

Ours: :meth:`evidence.seal.Sealer.seal` in memory (age-encrypt to one recipient, SHA-256 of the ciphertext,
Ed25519-signed manifest). Theirs: ``age -r <same recipient>`` over stdin -> stdout pipes on the same
bytes, process start included (that is how a shell pipeline would do it); the pipes are pumped in 1 MiB
pieces so Python's pipe handling does not slow age down. Runs alternate so both see the same machine
state; medians are reported. Target: ours >= 80 % of age's throughput. For comparison, also
``pyrage.encrypt`` + SHA-256 on the joined payload (the route the sealer does not take; see evidence/seal.py).

Then the durable write of each sealed segment (ciphertext and manifest: tmp -> fsync -> rename -> fsync
dir, via :func:`base.durable.write_atomically`) in ``--dir``, and CPU seconds per recorded minute for both
steps. Also the longest time a 1 ms ticker thread was kept from running while sealing: the capture
thread must never wait long for the GIL.

The payload is random bytes cut into frame-sized pieces: age's cost does not depend on content.
"""

from __future__ import annotations

import argparse
import fcntl
import importlib.metadata
import logging
import hashlib
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cryptography
import pyrage
from cryptography.hazmat.backends.openssl import backend

from base.durable import write_atomically
from evidence.chain import ChainState
from evidence.keys import generate_device_key, generate_evidence_keys, load_recipients, load_signing_key
from evidence.seal import Sealer
from camera.frames import EncodedFrame, StreamInfo
from camera.segment import Segment

FPS = 30
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


def make_segment(seconds: float, mbit: float, index: int) -> Segment:
    frames_n = round(seconds * FPS)
    total = round(seconds * mbit * 1e6 / 8)
    data = os.urandom(total)
    size = total // frames_n
    frames = []
    for i in range(frames_n):
        chunk = data[i * size:(i + 1) * size if i < frames_n - 1 else total]
        frames.append(EncodedFrame(data=chunk, pts_us=round(i * 1e6 / FPS), keyframe=i % FPS == 0,
                                   wall_time=1_750_000_000 + index * seconds + i / FPS, seq=i))
    info = StreamInfo("h264", 1920, 1080, float(FPS), round(mbit * 1e6), FPS, "bench-random")
    return Segment(incident_id="bench", index=index, frames=tuple(frames), stream=info)


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_age(age: str, recipient: str, payload: bytes) -> int:
    """``age -r`` over stdin -> stdout pipes, pumped in 1 MiB writes/reads through 1 MiB pipes, so the
    baseline is age's speed and not Python's pipe handling (subprocess.run writes 4 KiB at a time)."""
    proc = subprocess.Popen([age, "-r", recipient], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    for pipe in (proc.stdin, proc.stdout):
        fcntl.fcntl(pipe.fileno(), F_SETPIPE_SZ, 1 << 20)

    def feed():
        view = memoryview(payload)
        while view:
            view = view[os.write(proc.stdin.fileno(), view[:1 << 20]):]
        proc.stdin.close()

    writer = threading.Thread(target=feed, name="AgeFeedThread")
    writer.start()
    produced = 0
    while chunk := os.read(proc.stdout.fileno(), 1 << 20):
        produced += len(chunk)
    writer.join()
    proc.stdout.close()
    if proc.wait() != 0:
        raise RuntimeError(f"age exited with {proc.returncode}")
    return produced


class Ticker:
    """A thread that wants to run every millisecond; records the longest wait (a stand-in for capture)."""

    def __init__(self):
        self.longest = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="TickerThread", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=2)

    def _run(self):
        last = time.perf_counter()
        while not self._stop.wait(0.001):
            now = time.perf_counter()
            self.longest = max(self.longest, now - last)
            last = now


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--dir", default="/var/tmp", help="where the durable writes go (use the spool's filesystem)")
    ap.add_argument("--seconds", type=float, default=10.0, help="segment length")
    ap.add_argument("--mbit", type=float, default=10.0, help="stream bitrate")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # "starting a new evidence chain" is expected here

    print("Reproduce: .venv/bin/python bench/bench_seal.py " + " ".join(
        f"--{k} {v}" for k, v in (("iterations", args.iterations), ("dir", args.dir), ("seconds", args.seconds),
                                  ("mbit", args.mbit))))
    age = shutil.which("age")
    if age is None:
        print("the stock age CLI is not installed (apt install age)", file=sys.stderr)
        return 2
    age_version = subprocess.run([age, "--version"], capture_output=True, text=True).stdout.strip()
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.machine())
    print(f"Machine: {cpu}, {os.cpu_count()} CPU(s); Python {platform.python_version()}; "
          f"cryptography {cryptography.__version__} ({backend.openssl_version_text()}); "
          f"pyrage {importlib.metadata.version('pyrage')}; age {age_version}")

    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench-seal-") as work:
        work = Path(work)
        keys, state, spool = work / "keys", work / "state", work / "spool"
        for d in (keys, state, spool):
            d.mkdir()
        evidence = generate_evidence_keys(keys)
        generate_device_key(keys, device_id="bench-0001")
        sealer = Sealer(device_id="bench-0001", site="bench", recipients=load_recipients([evidence.recipient]),
                        signing_key=load_signing_key(keys / "device.key"), chain=ChainState.load(state))
        segments = [make_segment(args.seconds, args.mbit, i) for i in range(2)]
        nbytes = segments[0].nbytes
        print(f"Segment: {args.seconds:g} s of {args.mbit:g} Mbit/s = {nbytes / 1e6:.2f} MB in "
              f"{segments[0].frame_count} frames; {args.iterations} iterations each, alternating\n")

        # warm-up (page in pyrage, the age binary, the allocator)
        sealer.seal(segments[0], clock_sync="bench")
        run_age(age, evidence.recipient, segments[0].payload())

        ours_wall, ours_cpu, age_wall, age_cpu, write_wall, write_cpu, stalls = [], [], [], [], [], [], []
        rage_wall = []
        rage_recipient = pyrage.x25519.Recipient.from_str(evidence.recipient)
        for i in range(args.iterations):
            seg = segments[i % 2]
            with Ticker() as ticker:
                c0, t0 = time.process_time(), time.perf_counter()
                sealed = sealer.seal(seg, clock_sync="bench")
                t1, c1 = time.perf_counter(), time.process_time()
            ours_wall.append(t1 - t0)
            ours_cpu.append(c1 - c0)
            stalls.append(ticker.longest)

            payload = seg.payload()
            t0 = time.perf_counter()
            hashlib.sha256(pyrage.encrypt(payload, [rage_recipient])).hexdigest()
            rage_wall.append(time.perf_counter() - t0)

            c0, t0 = children_cpu(), time.perf_counter()
            produced = run_age(age, evidence.recipient, payload)
            t1, c1 = time.perf_counter(), children_cpu()
            age_wall.append(t1 - t0)
            age_cpu.append(c1 - c0)
            if produced < len(payload):
                raise RuntimeError("age produced less output than input")
            del payload

            c0, t0 = time.process_time(), time.perf_counter()
            write_atomically(spool / sealed.ciphertext_name, sealed.ciphertext)
            write_atomically(spool / sealed.manifest_name, sealed.manifest)
            t1, c1 = time.perf_counter(), time.process_time()
            write_wall.append(t1 - t0)
            write_cpu.append(c1 - c0)
            sealer.commit(sealed)
            for name in (sealed.ciphertext_name, sealed.manifest_name):
                (spool / name).unlink()

    med = statistics.median
    ours_mbs = nbytes / med(ours_wall) / 1e6
    age_mbs = nbytes / med(age_wall) / 1e6
    ratio = ours_mbs / age_mbs
    per_min = 60.0 / args.seconds
    print("Sealing in memory (encrypt + SHA-256 + sign), per segment, median:")
    print(f"  ours  (Sealer.seal)        {med(ours_wall) * 1e3:8.1f} ms wall  {med(ours_cpu) * 1e3:8.1f} ms CPU"
          f"  {ours_mbs:8.1f} MB/s")
    print(f"  age CLI (stdin -> stdout)   {med(age_wall) * 1e3:8.1f} ms wall  {med(age_cpu) * 1e3:8.1f} ms CPU"
          f"  {age_mbs:8.1f} MB/s")
    rage_mbs = nbytes / med(rage_wall) / 1e6
    print(f"  for comparison: pyrage.encrypt + SHA-256 (no signing) {med(rage_wall) * 1e3:6.1f} ms wall"
          f"  {rage_mbs:8.1f} MB/s = {rage_mbs / age_mbs * 100:.0f} % of age")
    verdict = "meets" if ratio >= 0.8 else "MISSES"
    print(f"  ratio ours/age throughput: {ratio * 100:.0f} % ({verdict} the >= 80 % target)")
    print(f"  longest wait of a 1 ms ticker thread while sealing: {max(stalls) * 1e3:.1f} ms "
          f"(Python switch interval {sys.getswitchinterval() * 1e3:.0f} ms)")
    print(f"\nDurable write in {args.dir} (ciphertext + manifest, each tmp -> fsync -> rename -> fsync dir), "
          "per segment:")
    print(f"  median {med(write_wall) * 1e3:.1f} ms wall (max {max(write_wall) * 1e3:.1f} ms), "
          f"{nbytes / med(write_wall) / 1e6:.0f} MB/s, {med(write_cpu) * 1e3:.1f} ms CPU")
    total_cpu = (med(ours_cpu) + med(write_cpu)) * per_min
    print(f"\nCPU seconds per recorded minute ({per_min:g} segments): seal {med(ours_cpu) * per_min:.3f} s + "
          f"write {med(write_cpu) * per_min:.3f} s = {total_cpu:.3f} s "
          f"({total_cpu / 60 * 100:.2f} % of one core)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
