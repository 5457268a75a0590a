"""The head of the device's evidence chain, kept on disk so sequence numbers and hashes run on across reboots.

Every manifest names the SHA-256 of the manifest before it and carries a sequence number one higher, so a
missing, inserted or reordered segment shows up at verification. The head (last sequence number and last
manifest hash) lives in ``chain.json`` in the state directory and is replaced atomically (tmp → fsync →
rename → fsync dir), so after power loss it holds either the old or the new head, never a torn one.

The sealer writes the spool first and advances the head second. A crash between the two leaves the spool
one manifest ahead of the head; at start the caller passes the newest spooled manifest to :meth:`adopt`.
A damaged state file is an error, never a silent restart at 1: that would fork the chain. A missing file
starts a new chain (first boot), logged as a warning; a verifier sees such a restart as a repeated seq.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from pathlib import Path

from base.durable import write_atomically
from base.errors import BodycamError, StorageError

logger = logging.getLogger(__name__)

STATE_FILE = "chain.json"
_FORMAT = 1
_HEX64 = re.compile(r"[0-9a-f]{64}")


class ChainStateError(BodycamError):
    """The chain state file is damaged or unreadable, or an update would break the chain."""


class ChainState:
    """Last sealed sequence number and manifest hash of this device, persisted in ``state_dir``.

    Sequence numbers start at 1; ``seq == 0`` with no hash means nothing was sealed yet (the next manifest's
    ``prev_manifest_sha256`` is null). One lock guards read-modify-write so the runtime may call
    :meth:`adopt` at start while the sealer thread owns :meth:`advance` afterwards.
    """

    def __init__(self, path: Path, seq: int = 0, manifest_sha256: str | None = None):
        self.path = Path(path)
        self._seq = seq
        self._hash = manifest_sha256
        self._lock = threading.Lock()

    @classmethod
    def load(cls, state_dir: str | os.PathLike) -> ChainState:
        """Read the head from ``state_dir/chain.json``; a missing file starts a new chain."""
        state_dir = Path(state_dir)
        path = state_dir / STATE_FILE
        try:
            text = path.read_bytes()
        except FileNotFoundError:
            if not state_dir.is_dir():
                raise ChainStateError(f"{state_dir}: state directory does not exist; create it "
                                      "(a missing directory may mean the storage is not mounted)") from None
            logger.warning("%s: no chain state; starting a new evidence chain at seq 1", path)
            return cls(path)
        except OSError as exc:
            raise ChainStateError(f"{path}: cannot read chain state ({exc.strerror})") from None
        seq, digest = _parse(path, text)
        logger.info("chain head: seq %d, manifest %s", seq, digest)
        return cls(path, seq, digest)

    @property
    def seq(self) -> int:
        """The last sealed sequence number (0: none yet)."""
        return self._seq

    @property
    def manifest_sha256(self) -> str | None:
        """SHA-256 (hex) of the last sealed manifest; the next manifest's ``prev_manifest_sha256``."""
        return self._hash

    @property
    def next_seq(self) -> int:
        return self._seq + 1

    def head(self) -> tuple[int, str | None]:
        """(seq, manifest hash) read together, for building the next manifest."""
        with self._lock:
            return self._seq, self._hash

    def advance(self, seq: int, manifest_sha256: str) -> None:
        """Record a newly sealed and spooled manifest; it must be exactly the next one."""
        _check_hash(manifest_sha256)
        with self._lock:
            if seq != self._seq + 1:
                raise ChainStateError(f"cannot advance the evidence chain from seq {self._seq} to {seq}; "
                                      f"the next segment must have seq {self._seq + 1}")
            self._store(seq, manifest_sha256)

    def adopt(self, seq: int, manifest_sha256: str) -> bool:
        """Move the head to a newer manifest found elsewhere (the spool after a crash); ignore older ones.

        Returns True when the head moved. Older or equal heads are ignored so that calling this with
        whatever the spool holds is always safe.
        """
        _check_hash(manifest_sha256)
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
            raise ChainStateError(f"cannot adopt seq {seq!r}: sequence numbers are whole numbers from 1")
        with self._lock:
            if seq <= self._seq:
                return False
            logger.warning("chain head moves from seq %d to seq %d found in the spool", self._seq, seq)
            self._store(seq, manifest_sha256)
            return True

    def _store(self, seq: int, digest: str) -> None:
        data = json.dumps({"format": _FORMAT, "seq": seq, "manifest_sha256": digest},
                          sort_keys=True).encode("ascii") + b"\n"
        try:
            write_atomically(self.path, data, what="writing the chain head")
        except StorageError as exc:
            raise ChainStateError(f"{self.path}: cannot write chain state ({exc})") from None
        self._seq, self._hash = seq, digest


def _parse(path: Path, text: bytes) -> tuple[int, str | None]:
    damaged = (f"{path}: chain state is damaged; not starting a new chain, because that would break the evidence "
               "chain (restore the file, or move it away to start a new chain on purpose)")
    try:
        doc = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ChainStateError(damaged) from None
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT or set(doc) != {"format", "seq", "manifest_sha256"}:
        raise ChainStateError(damaged)
    seq, digest = doc["seq"], doc["manifest_sha256"]
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise ChainStateError(damaged)
    if (seq == 0) != (digest is None):
        raise ChainStateError(damaged)
    if digest is not None and not (isinstance(digest, str) and _HEX64.fullmatch(digest)):
        raise ChainStateError(damaged)
    return seq, digest


def _check_hash(digest) -> None:
    if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
        raise ChainStateError(f"{digest!r} is not a SHA-256 hex digest (64 lower-case hex digits)")
