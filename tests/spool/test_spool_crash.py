"""The crash test: a writer killed with SIGKILL at random moments never loses a committed segment.

Every kill is followed by a recovery in this process, which must find only complete, verifiable
segments, discard at most the one segment that was being stored (with a logged reason), quarantine
nothing, and still hold every segment the child reported as stored and not yet acknowledged.

SIGKILL keeps what the kernel already has, so this proves the *ordering* of writes, renames and
deletions (what a crash of the agent can leave behind), not that fsync reaches the card; a power
cut test on real hardware covers the latter (see docs).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evidence.spool import Spool

WRITER = Path(__file__).with_name("crash_writer.py")


def verify(manifest: bytes) -> None:
    if json.loads(manifest).get("device") != "crash":
        raise ValueError("not written by the crash writer")


def run_crash_test(directory: Path, runs: int, seed: int, caplog) -> dict:
    rng = random.Random(seed)
    stored, acked, purged = set(), set(), set()
    counts = dict(runs=0, stored=0, acked=0, purged=0, discarded_partials=0, kills_mid_store=0,
                  purges_completed=0, unconfirmed_present=0)
    for run in range(runs):
        child = subprocess.Popen([sys.executable, str(WRITER), str(directory), str(rng.randrange(2**32))],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 bufsize=0)  # unbuffered: readline() must not swallow lines after READY
        ready = child.stdout.readline()
        if not ready.startswith(b"READY"):
            child.kill()
            _, err = child.communicate()
            pytest.fail(f"run {run}: writer did not start: {ready!r} {err.decode(errors='replace')}")
        time.sleep(rng.uniform(0.0, 0.3))
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate(timeout=30)
        assert child.returncode == -signal.SIGKILL, f"run {run}: writer died by itself: {child.returncode}"
        for line in out.split(b"\n")[:-1]:  # a line cut by the kill has no newline: not a promise
            op, stem = line.decode().split()
            {"STORED": stored, "ACKED": acked, "PURGED": purged}[op].add(stem)

        caplog.clear()
        spool = Spool(directory, verify_manifest=verify)
        report = spool.recover()
        where = f"run {run} (seed {seed})"
        assert report.quarantined == (), f"{where}: quarantined {report.quarantined}"
        assert report.unknown == (), f"{where}: unknown files {report.unknown}"
        assert len(report.partial_segments) <= 1, f"{where}: more than one partial: {report.discarded}"
        assert not set(report.partial_segments) & stored, f"{where}: a committed segment was discarded"
        logged = " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
        for action in report.discarded:
            assert action.name in logged and action.reason in logged, f"{where}: discard not logged: {action}"

        present = {i.stem for i in spool.pending()} | {i.stem for i in spool.acknowledged()}
        # A PURGED line also proves the acknowledgement (its ACKED line may have been cut by the kill).
        lost = stored - acked - purged - present
        assert not lost, f"{where}: committed, unacknowledged segments lost: {sorted(lost)}"
        assert not purged & present, f"{where}: purged segments came back: {sorted(purged & present)}"
        for stem in present:
            segment = spool.read(stem)
            assert hashlib.sha256(segment.ciphertext).hexdigest() == json.loads(segment.manifest)["ciphertext_sha256"]
        leftovers = [n for n in os.listdir(directory) if n.endswith(".tmp")]
        assert not leftovers, f"{where}: tmp files left after recovery: {leftovers}"
        if stored:
            newest = json.loads(spool.newest_manifest())["seq"]
            assert newest >= max(int(s.split("-")[1]) for s in stored), f"{where}: chain head went backwards"

        counts["runs"] += 1
        counts["discarded_partials"] += len(report.partial_segments)
        counts["kills_mid_store"] += bool(report.partial_segments)
        counts["purges_completed"] += len(report.purges_completed)
        counts["unconfirmed_present"] = len(present - stored)
    counts.update(stored=len(stored), acked=len(acked), purged=len(purged))
    return counts


def report_counts(summary, name: str, counts: dict, elapsed: float) -> None:
    line = (f"{name}: {counts['runs']} SIGKILL runs, {counts['stored']} segments confirmed stored, "
            f"{counts['acked']} acknowledged, {counts['purged']} purged; recovery discarded "
            f"{counts['discarded_partials']} partial segment(s) (never a confirmed one), completed "
            f"{counts['purges_completed']} interrupted purge(s), lost 0, quarantined 0 [{elapsed:.1f} s]")
    print(line)
    summary.append(line)


@pytest.mark.system  # 40 writer processes killed at random moments: about 10 s
def test_sigkill_never_loses_a_committed_segment(tmp_path, caplog, summary):
    caplog.set_level(logging.INFO, logger="evidence.spool")
    seed = int(os.environ.get("CRASH_SEED", random.randrange(2**32)))
    start = time.monotonic()
    counts = run_crash_test(tmp_path / "spool", runs=40, seed=seed, caplog=caplog)
    report_counts(summary, f"crash test (seed {seed})", counts, time.monotonic() - start)
    assert counts["stored"] > 40  # the test really stored things between kills


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_sigkill_soak(tmp_path, caplog, summary):
    caplog.set_level(logging.INFO, logger="evidence.spool")
    seed = int(os.environ.get("CRASH_SEED", random.randrange(2**32)))
    start = time.monotonic()
    counts = run_crash_test(tmp_path / "spool", runs=500, seed=seed, caplog=caplog)
    report_counts(summary, f"crash soak (seed {seed})", counts, time.monotonic() - start)
    assert counts["discarded_partials"] > 0  # some kills must have hit a store in progress
