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
    """``bodycam-office custodian`` for the world's store and keys; ``identity`` and ``devices`` add another
    municipality's evidence key (instead of the world's) and more enrolled devices, ``env`` its environment."""

    def __init__(self, world, socket_dir: Path, *, identity: Path | None = None, devices=(), env=None):
        self.world = world
        self.socket = socket_dir / "custodian.sock"
        self.identity = identity or world.env.identity
        self.devices = [world.env.device / "device.pub", *devices]
        self.env = env or {}
        self.proc: subprocess.Popen | None = None
        self.stderr_path = world.root / "custodian.stderr"

    def argv(self, *extra: str) -> list[str]:
        w = self.world
        devices = [arg for d in self.devices for arg in ("--devices", str(d))]
        return [sys.executable, "-m", "backoffice.cli", "custodian", "--socket", str(self.socket),
                "--identity", str(self.identity), "--office-key", str(w.root / "keys" / "office.key"),
                *devices, "--store", str(w.store), "--audit-log", str(w.log_path), *extra]

    def start(self, *extra: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO), **self.env}
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


#: What only plaintext holds: MP4 box headers, H.264 start codes with a sequence parameter set or an IDR picture.
PLAINTEXT_MARKERS = (b"ftyp", b"moof", b"\x00\x00\x00\x01\x67", b"\x00\x00\x01\x65", b"\x00\x00\x01\x67")
AGE_HEADER = b"age-encryption.org/v1\n"


def scan_for_plaintext(dirs) -> list[str]:
    """Files under ``dirs`` that hold picture or sound: a marker of :data:`PLAINTEXT_MARKERS` in any file but a
    sealed segment, and any ``.age`` file that is neither empty (an end marker's) nor starts as age's ciphertext
    does (ciphertext may hold any four bytes by chance, so sealed segments are judged by their header instead)."""
    found = []
    for d in dirs:
        for p in Path(d).rglob("*"):
            if not p.is_file() or p.is_symlink():
                continue
            with open(p, "rb") as fh:
                if p.suffix == ".age":  # an end marker's is empty: it seals no picture
                    if fh.read(len(AGE_HEADER)) not in (AGE_HEADER, b""):
                        found.append(str(p))
                    continue
                data = fh.read()
            if any(m in data for m in PLAINTEXT_MARKERS):
                found.append(str(p))
    return sorted(set(found))


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
