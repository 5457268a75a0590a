"""Custody tests: the office world of tests/office (catalog, store, office key and log, clock) with a real
custodian process listening on a Unix socket in a short temporary directory, decrypting real sealed segments."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.office import conftest as office_conftest
from tests.support import wait_for

# the catalog tests' fixtures: their world (store, office key and log, clock) and their frames
world = office_conftest.world
frames_30 = office_conftest.frames_30

REPO = Path(__file__).resolve().parents[2]


class CustodianProcess:
    def __init__(self, world, socket_dir: Path):
        self.world = world
        self.socket = socket_dir / "custodian.sock"
        self.proc: subprocess.Popen | None = None
        self.stderr_path = world.root / "custodian.stderr"

    def argv(self, *extra: str) -> list[str]:
        w = self.world
        return [sys.executable, "-m", "backoffice.cli", "custodian", "--socket", str(self.socket),
                "--identity", str(w.env.identity), "--office-key", str(w.root / "keys" / "office.key"),
                "--devices", str(w.env.device / "device.pub"), "--store", str(w.store),
                "--audit-log", str(w.log_path), *extra]

    def start(self, *extra: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(self.argv(*extra), cwd=self.world.root, env=env, stderr=err,
                                         stdout=subprocess.DEVNULL)
        if not wait_for(lambda: self.listening() or self.proc.poll() is not None, timeout=30):
            raise AssertionError(f"the custodian did not listen on its socket in 30 s: {self.stderr()}")
        if self.proc.poll() is not None:
            raise AssertionError(f"the custodian exited with {self.proc.returncode}: {self.stderr()}")

    def listening(self) -> bool:
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(str(self.socket))
            except OSError:
                return False
            return True

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


@pytest.fixture
def socket_dir():
    """A short directory for the socket (a Unix socket path may hold at most 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="cust-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def custodian(world, socket_dir):
    """A running custodian for the world's store; the world's clock is set to now, so tickets are current."""
    world.clock.now = datetime.now(timezone.utc)
    proc = CustodianProcess(world, socket_dir)
    proc.start()
    yield proc
    proc.stop()


def store_receipts(world, sealed: list, receipt_key) -> None:
    """The receiver's signed receipts for ``sealed`` segments, where the store keeps them."""
    from evidence.receipts import sign_receipt
    from evidence.seal import Manifest

    for s in sealed:
        m = Manifest.parse(s.manifest)
        path = world.store / m.site / m.device_id / ".receipts" / f"{m.stem}.receipt.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(sign_receipt(receipt_key, device_id=m.device_id, site=m.site, stem=m.stem, seq=m.seq,
                                      incident_id=m.incident_id, ciphertext_sha256=m.ciphertext_sha256,
                                      ciphertext_bytes=m.ciphertext_bytes, manifest_sha256=m.sha256,
                                      receiver_id="office-1", chain="linked" if m.seq > 1 else "first",
                                      received_at=world.clock.now.timestamp()))


@pytest.fixture(scope="session")
def sound_segments():
    """An incident with sound ("inc-av", three segments of format 2), made once; each test seals it again."""
    from tests.evidence.conftest import record_with_sound

    return record_with_sound("inc-av")[1]
