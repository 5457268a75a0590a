"""The SD-card spool of sealed segments: crash-safe storage until the back office acknowledges them.

Rules the rest of the agent may rely on:

* A segment is *committed* once :meth:`Spool.store` (whole ciphertext in memory) or
  :meth:`SegmentWriter.commit` (ciphertext streamed in while it is encrypted) returns. Its ciphertext is
  written first, its manifest last (tmp -> write -> fsync -> rename -> fsync(dir) for each), so a
  manifest on disk always has its complete ciphertext next to it. A power loss costs at most the
  segment being stored.
* Nothing is deleted unless it provably is not evidence: a stray ``.tmp`` file or a ciphertext
  without a manifest (the segment being written at the crash) is removed at recovery with a WARNING;
  a manifest whose ciphertext is missing, mismatched or fails ``verify_manifest`` is moved to
  ``quarantine/`` and reported, never deleted. Given the chain head (``committed_seq``), recovery
  tells the segment being written (seq one past the head) from a committed one whose manifest was
  lost (seq at or below the head): only the first is removed, the second is quarantined. Every
  action is in :class:`RecoveryReport`, which the caller writes to the signed audit log.
* :meth:`Spool.purge` deletes a segment only when a durable receipt names that exact ciphertext
  SHA-256. Whether to purge at once on acknowledgement or only when space is needed is the caller's
  policy.

On disk, in the spool directory (``<stem>`` is e.g. ``dev1-0000000042``):

``<stem>.age``            the ciphertext (age format), exactly the sealer's bytes
``<stem>.manifest.json``  the signed manifest; its presence is the commit point
``<stem>.receipt.json``   our durable record of the back office's acknowledgement
``chain_head.json``       a copy of the newest manifest, kept when that segment is purged
``*.tmp``                 a write in progress (never read; removed at recovery)
``quarantine/``           suspicious files moved aside for a human to examine

A note on locking: ``_lock`` guards the in-memory index and is also held for the whole of
:meth:`acknowledge` and :meth:`purge`, which are small (one receipt, or three unlinks) and must not
interleave with each other on the same segment. :meth:`store` and :class:`SegmentWriter` write their
files *without* the lock -- they create new names only, and only the single writer thread uses them --
and take the lock just to publish the finished segment into the index, so a slow SD card never
blocks the uplink's reads and a pending upload never blocks the recorder for longer than one small
fsync. :meth:`read` and :meth:`open_segment` read files without the lock; a concurrent purge then
shows up as :class:`SegmentNotFoundError`.

Who calls what: :meth:`recover` once at start-up before any thread runs; :meth:`store` and
:meth:`begin` from the one sealer thread only; :meth:`pending`, :meth:`read`, :meth:`open_segment`,
:meth:`backlog`, :meth:`newest_manifest`, :meth:`acknowledge` and :meth:`purge` from any thread
(the uplink worker, and the writer thread when it purges acknowledged segments to make room).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from base.durable import fsync_dir, write_atomically
from base.ids import is_stem
from base.utctime import iso_utc
from base.errors import storage_error
from base.errors import BodycamError

logger = logging.getLogger(__name__)

AGE_SUFFIX = ".age"
MANIFEST_SUFFIX = ".manifest.json"
RECEIPT_SUFFIX = ".receipt.json"
TMP_SUFFIX = ".tmp"
CHAIN_HEAD_NAME = "chain_head.json"
QUARANTINE_DIR = "quarantine"
FILE_MODE = 0o640

#: Stems become file names and topic parts: no dots, no separators, bounded length.
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_HASH_CHUNK = 1024 * 1024


class SpoolError(BodycamError):
    """A spool operation was refused; the message says why and nothing stored was changed."""


class SegmentNotFoundError(SpoolError):
    """No committed segment with that stem is in the spool (never stored, or already purged)."""


class SegmentExistsError(SpoolError):
    """A segment with that stem is already stored; evidence is never overwritten."""


class InvalidSegmentError(SpoolError):
    """The sealed segment handed to :meth:`Spool.store` is inconsistent (bad stem, hash or manifest)."""


class CorruptSegmentError(SpoolError):
    """A stored ciphertext no longer matches the SHA-256 its manifest names (SD card fault)."""


class ReceiptMismatchError(SpoolError):
    """An acknowledgement names a different ciphertext than the one stored under that stem."""


class NotAcknowledgedError(SpoolError):
    """A purge was asked for a segment without a matching receipt."""


class SealedSegment(Protocol):
    """What the spool needs from a sealed segment (``evidence.seal`` makes them); read-only is enough."""

    @property
    def stem(self) -> str: ...
    @property
    def ciphertext(self) -> bytes: ...
    @property
    def manifest(self) -> bytes: ...
    @property
    def seq(self) -> int: ...
    @property
    def ciphertext_sha256(self) -> str: ...


#: Called with a manifest's bytes at recovery. Return normally (or True) to accept; return False or
#: raise ``BodycamError``/``ValueError`` with a reason to reject -- the segment is then quarantined.
ManifestVerifier = Callable[[bytes], object]


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """One committed segment as the index knows it (immutable; safe to share between threads)."""

    stem: str
    seq: int
    ciphertext_sha256: str
    ciphertext_bytes: int
    manifest_bytes: int
    #: UNIX time the manifest was committed (its mtime).
    stored_at: float
    acknowledged: bool = False

    @property
    def nbytes(self) -> int:
        return self.ciphertext_bytes + self.manifest_bytes


@dataclass(frozen=True, slots=True)
class StoredSegment:
    """A segment read back from the card, its ciphertext checked against the manifest's hash."""

    info: SegmentInfo
    ciphertext: bytes
    manifest: bytes

    @property
    def stem(self) -> str:
        return self.info.stem


@dataclass(frozen=True, slots=True)
class Backlog:
    """What is still waiting for the back office, for telemetry and the display."""

    count: int
    bytes: int
    #: Seconds since the oldest unacknowledged segment was stored; None when nothing is pending.
    oldest_age_s: float | None
    oldest_seq: int | None
    #: Acknowledged segments still on the card (kept until space is needed, if that is the policy).
    acknowledged_count: int
    acknowledged_bytes: int


@dataclass(frozen=True, slots=True)
class FileAction:
    """A file recovery removed or moved, and why."""

    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What :meth:`Spool.recover` found; the runtime writes it to the audit log and telemetry."""

    pending: int
    acknowledged: int
    #: Incomplete writes removed (``*.tmp``, ciphertext without manifest): allowed losses.
    discarded: tuple[FileAction, ...]
    #: Files moved to ``quarantine/`` because they might be evidence but cannot be trusted.
    quarantined: tuple[FileAction, ...]
    #: Stems whose interrupted purge (receipt present) was completed.
    purges_completed: tuple[str, ...]
    #: Files recovery does not recognise; left untouched.
    unknown: tuple[str, ...]

    @property
    def partial_segments(self) -> tuple[str, ...]:
        """Stems of segments lost because they were being stored at the crash (at most one)."""
        stems = {_stem_of(a.name) for a in self.discarded if not a.name.endswith(RECEIPT_SUFFIX + TMP_SUFFIX)}
        stems.discard(None)
        return tuple(sorted(stems))

    @property
    def clean(self) -> bool:
        return not (self.discarded or self.quarantined or self.unknown)


class Spool:
    """The directory of sealed segments; see the module docstring for the guarantees."""

    def __init__(self, directory: str | os.PathLike, verify_manifest: ManifestVerifier | None = None, *,
                 clock: Callable[[], float] = time.time, committed_seq: int | None = None):
        self.directory = Path(directory)
        #: The chain head's seq when the spool was opened: segments up to it had their manifest committed.
        self.committed_seq = committed_seq
        self.quarantine_dir = self.directory / QUARANTINE_DIR
        self._verify_manifest = verify_manifest
        self._clock = clock
        self._lock = threading.Lock()
        self._index: dict[str, SegmentInfo] = {}
        self._writing: set[str] = set()
        self._chain_head: tuple[int, bytes] | None = None
        self._recovered = False
        self.last_recovery: RecoveryReport | None = None

    @classmethod
    def open(cls, directory: str | os.PathLike, verify_manifest: ManifestVerifier | None = None, *,
             clock: Callable[[], float] = time.time, committed_seq: int | None = None) -> Spool:
        """Create the directory if needed, recover it, and return the ready spool (its report is
        :attr:`last_recovery`). ``committed_seq``: the chain head's seq (see the module docstring)."""
        spool = cls(directory, verify_manifest, clock=clock, committed_seq=committed_seq)
        spool.recover()
        return spool

    # ------------------------------------------------------------------ start-up

    def recover(self) -> RecoveryReport:
        """Rebuild the index from the card, cleaning up after a crash. Call before any other thread.

        Raises :class:`StorageError` if the directory cannot be created or listed; every decision
        about an individual file is logged with its reason and returned in the report.
        """
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            names = sorted(e.name for e in os.scandir(self.directory) if not e.is_dir(follow_symlinks=False))
        except OSError as exc:
            raise storage_error(exc, self.directory, "opening the spool directory") from exc
        groups: dict[str, set[str]] = {}
        tmps, unknown = [], []
        chain_head_present = False
        for name in names:
            if name.endswith(TMP_SUFFIX) and (_stem_of(name) or name == CHAIN_HEAD_NAME + TMP_SUFFIX):
                tmps.append(name)
            elif name == CHAIN_HEAD_NAME:
                chain_head_present = True
            elif (stem := _stem_of(name)) is not None:
                groups.setdefault(stem, set()).add(name[len(stem):])
            else:
                unknown.append(name)
        r = _Recovery()
        for name in tmps:
            self._discard(r, name, _tmp_reason(name))
        orphans = [s for s, kinds in groups.items() if kinds == {AGE_SUFFIX}]
        for stem, kinds in sorted(groups.items()):
            self._recover_stem(r, stem, kinds, several_orphans=len(orphans) > 1)
        if chain_head_present:
            self._recover_chain_head(r)
        for name in unknown:
            logger.warning("spool: unknown file %s left untouched", self.directory / name)
        fsync_dir(self.directory, "the spool directory")
        with self._lock:
            self._index = r.index
            self._recovered = True
        report = RecoveryReport(
            pending=sum(1 for i in r.index.values() if not i.acknowledged),
            acknowledged=sum(1 for i in r.index.values() if i.acknowledged),
            discarded=tuple(r.discarded), quarantined=tuple(r.quarantined),
            purges_completed=tuple(r.purges), unknown=tuple(unknown))
        self.last_recovery = report
        logger.info("spool %s recovered: %d pending, %d acknowledged, %d discarded, %d quarantined",
                    self.directory, report.pending, report.acknowledged, len(report.discarded),
                    len(report.quarantined))
        return report

    def _recover_stem(self, r: _Recovery, stem: str, kinds: set[str], several_orphans: bool) -> None:
        has_age, has_manifest, has_receipt = (k in kinds for k in (AGE_SUFFIX, MANIFEST_SUFFIX, RECEIPT_SUFFIX))
        if not has_manifest:
            if has_age and has_receipt:
                self._quarantine(r, stem, "ciphertext and receipt without a manifest (not a state the "
                                 "agent writes; the manifest was lost or removed)")
            elif has_age and (committed := self._committed_reason(stem)):
                self._quarantine(r, stem, committed)
            elif has_age and several_orphans:
                self._quarantine(r, stem, "ciphertext without a manifest, and more than one such file: "
                                 "not explained by one interrupted write")
            elif has_age:
                self._discard(r, stem + AGE_SUFFIX, "ciphertext without a manifest: the segment was being "
                              "stored when the agent stopped (power loss or crash)")
            else:
                self._finish_purge(r, stem, "receipt left by an interrupted purge")
            return
        manifest_path = self._path(stem, MANIFEST_SUFFIX)
        try:
            manifest = manifest_path.read_bytes()
        except OSError as exc:
            raise storage_error(exc, manifest_path, f"reading the manifest of {stem}") from exc
        try:
            seq, sha = _parse_manifest(manifest)
        except InvalidSegmentError as exc:
            self._quarantine(r, stem, f"manifest unreadable: {exc}")
            return
        receipt_ok = has_receipt and self._receipt_names(stem, sha)
        if not has_age:
            if receipt_ok:
                self._finish_purge(r, stem, "manifest and receipt left by an interrupted purge")
            else:
                self._quarantine(r, stem, "ciphertext missing for a committed manifest")
            return
        actual = self._hash_file(self._path(stem, AGE_SUFFIX))
        if actual != sha:
            self._quarantine(r, stem, f"ciphertext SHA-256 {actual} does not match the manifest's {sha}")
            return
        rejection = self._rejection(manifest)
        if rejection:
            self._quarantine(r, stem, f"manifest rejected by verification: {rejection}")
            return
        if has_receipt and not receipt_ok:
            self._quarantine(r, stem, "receipt does not name this segment's ciphertext; the segment "
                             "stays pending", suffixes=(RECEIPT_SUFFIX,))
        r.index[stem] = self._info(stem, seq, sha, len(manifest), acknowledged=receipt_ok)

    def _committed_reason(self, stem: str) -> str | None:
        """Why a ciphertext without a manifest cannot be the segment being written at the crash, or None.

        The sealer advances the chain head only after the manifest is durable, and writes segment
        head + 1 next; so only that one may lack its manifest after a crash.
        """
        if self.committed_seq is None:
            return None
        seq = _seq_of(stem)
        if seq is None:
            return "ciphertext without a manifest, and its name carries no sequence number"
        if seq <= self.committed_seq:
            return (f"ciphertext of seq {seq} without its manifest, although the chain head (seq "
                    f"{self.committed_seq}) says the manifest was committed: it was lost or removed")
        if seq > self.committed_seq + 1:
            return (f"ciphertext of seq {seq} without a manifest, beyond the segment being written at a crash "
                    f"(seq {self.committed_seq + 1})")
        return None

    def _recover_chain_head(self, r: _Recovery) -> None:
        path = self.directory / CHAIN_HEAD_NAME
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise storage_error(exc, path, "reading the chain head") from exc
        try:
            seq, _ = _parse_manifest(data)
        except InvalidSegmentError as exc:
            self._quarantine_file(r, CHAIN_HEAD_NAME, f"chain head unreadable: {exc}")
            return
        rejection = self._rejection(data)
        if rejection:
            self._quarantine_file(r, CHAIN_HEAD_NAME, f"chain head rejected by verification: {rejection}")
            return
        self._chain_head = (seq, data)

    def _rejection(self, manifest: bytes) -> str | None:
        """The reason ``verify_manifest`` rejects ``manifest``, or None when it accepts it."""
        if self._verify_manifest is None:
            return None
        try:
            verdict = self._verify_manifest(manifest)
        except (BodycamError, ValueError) as exc:
            return str(exc) or type(exc).__name__
        return "verifier returned False" if verdict is False else None

    def _discard(self, r: _Recovery, name: str, reason: str) -> None:
        path = self.directory / name
        logger.warning("spool: removing %s: %s", path, reason)
        try:
            path.unlink()
        except OSError as exc:
            raise storage_error(exc, path, "removing an incomplete write") from exc
        r.discarded.append(FileAction(name, reason))

    def _quarantine(self, r: _Recovery, stem: str, reason: str,
                    suffixes: tuple[str, ...] = (AGE_SUFFIX, MANIFEST_SUFFIX, RECEIPT_SUFFIX)) -> None:
        for suffix in suffixes:
            if self._path(stem, suffix).exists():
                self._quarantine_file(r, stem + suffix, reason)

    def _quarantine_file(self, r: _Recovery, name: str, reason: str) -> None:
        src = self.directory / name
        try:
            self.quarantine_dir.mkdir(exist_ok=True)
            dst = self.quarantine_dir / name
            n = 0
            while dst.exists():
                n += 1
                dst = self.quarantine_dir / f"{name}.{n}"
            os.rename(src, dst)
        except OSError as exc:
            raise storage_error(exc, src, "moving a suspicious file to quarantine") from exc
        fsync_dir(self.quarantine_dir, "the spool directory")
        logger.error("spool: quarantined %s -> %s: %s", src, dst, reason)
        r.quarantined.append(FileAction(name, reason))

    def _finish_purge(self, r: _Recovery, stem: str, reason: str) -> None:
        logger.info("spool: completing purge of %s (%s)", stem, reason)
        for suffix in (MANIFEST_SUFFIX, RECEIPT_SUFFIX):
            self._unlink(self._path(stem, suffix), missing_ok=True)
        r.purges.append(stem)

    # ------------------------------------------------------------------ the writer

    def store(self, sealed: SealedSegment) -> SegmentInfo:
        """Commit one sealed segment held in memory durably; only the single writer thread may call this.

        Raises :class:`InvalidSegmentError` for an inconsistent segment, :class:`SegmentExistsError`
        for a stem already stored, and :class:`StorageError` (e.g. ``StorageFullError``) when the card
        refuses; in every failure case the files of this segment are removed again and nothing else
        is touched, so the caller may retry with the same object.
        """
        stem = _check_stem(sealed.stem)
        sha = hashlib.sha256(sealed.ciphertext).hexdigest()
        if sealed.ciphertext_sha256 != sha:
            raise InvalidSegmentError(f"segment {stem}: its ciphertext hashes to {sha}, not to the "
                                      f"claimed {sealed.ciphertext_sha256}; not stored")
        _check_manifest(stem, sealed.manifest, sealed.seq, sha)
        with self.begin(stem) as writer:
            writer.write(sealed.ciphertext)
            return writer.commit(sealed.manifest, sealed.seq, sealed.ciphertext_sha256)

    def begin(self, stem: str) -> SegmentWriter:
        """Start storing a new segment whose ciphertext is streamed in while it is being encrypted.

        Use it as a context manager; leaving the block without :meth:`SegmentWriter.commit` removes
        what was written. Only the single writer thread may call this. Raises
        :class:`SegmentExistsError` for a stem already stored, :class:`StorageError` if the card refuses.
        """
        self._require_recovered()
        stem = _check_stem(stem)
        with self._lock:
            if stem in self._index or stem in self._writing:
                raise SegmentExistsError(f"segment {stem} is already in the spool; evidence is never overwritten")
            self._writing.add(stem)
        try:
            if self._path(stem, MANIFEST_SUFFIX).exists() or self._path(stem, AGE_SUFFIX).exists():
                raise SegmentExistsError(f"files for segment {stem} already exist in {self.directory}; "
                                         "evidence is never overwritten")
            return SegmentWriter(self, stem)
        except BaseException:
            with self._lock:
                self._writing.discard(stem)
            raise

    def _committed(self, writer: SegmentWriter, info: SegmentInfo | None) -> None:
        """A writer finished: publish its segment into the index (``info``) or just free its stem."""
        with self._lock:
            if info is not None:
                self._index[info.stem] = info
            self._writing.discard(writer.stem)
        if info is not None:
            logger.debug("spool: stored %s (seq %d, %d bytes)", info.stem, info.seq, info.ciphertext_bytes)

    # ------------------------------------------------------------------ readers

    def pending(self) -> list[SegmentInfo]:
        """Unacknowledged segments, oldest first (by seq, then stem)."""
        self._require_recovered()
        with self._lock:
            items = [i for i in self._index.values() if not i.acknowledged]
        return sorted(items, key=lambda i: (i.seq, i.stem))

    def acknowledged(self) -> list[SegmentInfo]:
        """Acknowledged segments still on the card, oldest first: what a space-driven purge may free."""
        self._require_recovered()
        with self._lock:
            items = [i for i in self._index.values() if i.acknowledged]
        return sorted(items, key=lambda i: (i.seq, i.stem))

    def info(self, stem: str) -> SegmentInfo:
        self._require_recovered()
        with self._lock:
            try:
                return self._index[stem]
            except KeyError:
                raise SegmentNotFoundError(f"no segment {stem!r} in the spool {self.directory}") from None

    def read(self, stem: str) -> StoredSegment:
        """The ciphertext and manifest of a committed segment as a whole (tools and tests; the uplink
        reads pieces through :meth:`open_segment`).

        Raises :class:`CorruptSegmentError` (file left in place) if the card no longer returns the
        bytes the manifest names, and :class:`SegmentNotFoundError` if it was purged meanwhile.
        """
        with self.open_segment(stem) as reader:
            return StoredSegment(reader.info, reader.read(0, reader.size), reader.manifest)

    def open_segment(self, stem: str) -> SegmentReader:
        """A committed segment opened for sending: checked against its manifest's hash, then read piece by
        piece, so the uplink never holds a whole ciphertext. Same errors as :meth:`read`; close it after use.
        """
        info = self.info(stem)
        path = self._path(stem, AGE_SUFFIX)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise SegmentNotFoundError(f"segment {stem} was purged while being read") from None
        except OSError as exc:
            raise storage_error(exc, path, f"reading segment {stem}") from exc
        try:
            digest, size = hashlib.sha256(), 0
            try:
                while block := os.read(fd, _HASH_CHUNK):
                    digest.update(block)
                    size += len(block)
                manifest = self._path(stem, MANIFEST_SUFFIX).read_bytes()
            except FileNotFoundError:
                raise SegmentNotFoundError(f"segment {stem} was purged while being read") from None
            except OSError as exc:
                raise storage_error(exc, path, f"reading segment {stem}") from exc
            actual = digest.hexdigest()
            if actual != info.ciphertext_sha256:
                logger.error("spool: segment %s is corrupt on the card (SHA-256 %s, manifest says %s)",
                             stem, actual, info.ciphertext_sha256)
                raise CorruptSegmentError(f"segment {stem}: the card returned ciphertext with SHA-256 {actual}, "
                                          f"the manifest names {info.ciphertext_sha256}; the SD card may be failing")
            return SegmentReader(info, manifest, fd, path)
        except BaseException:
            os.close(fd)
            raise

    def newest_manifest(self) -> bytes | None:
        """The manifest with the highest seq ever committed and not superseded, for the hash chain.

        Includes acknowledged segments and the copy kept when the newest segment was purged, so the
        sealer can continue the chain after a crash even with an empty spool. None on a fresh card.
        """
        self._require_recovered()
        with self._lock:  # held while reading one small file, so a concurrent purge cannot interleave
            newest = max(self._index.values(), key=lambda i: (i.seq, i.stem), default=None)
            if newest is None or (self._chain_head is not None and self._chain_head[0] > newest.seq):
                return None if self._chain_head is None else self._chain_head[1]
            path = self._path(newest.stem, MANIFEST_SUFFIX)
            try:
                return path.read_bytes()
            except OSError as exc:
                raise storage_error(exc, path, "reading the newest manifest") from exc

    def backlog(self) -> Backlog:
        """Count, size and age of what the back office has not acknowledged yet."""
        self._require_recovered()
        now = self._clock()
        with self._lock:
            items = list(self._index.values())
        pending = [i for i in items if not i.acknowledged]
        acked = [i for i in items if i.acknowledged]
        oldest = min(pending, key=lambda i: (i.seq, i.stem), default=None)
        return Backlog(
            count=len(pending), bytes=sum(i.nbytes for i in pending),
            oldest_age_s=None if oldest is None else max(0.0, now - min(i.stored_at for i in pending)),
            oldest_seq=None if oldest is None else oldest.seq,
            acknowledged_count=len(acked), acknowledged_bytes=sum(i.nbytes for i in acked))

    # ------------------------------------------------------------------ acknowledgement and purge

    def acknowledge(self, stem: str, ciphertext_sha256: str, receipt_bytes: bytes) -> SegmentInfo:
        """Record durably that the back office holds ``stem``'s ciphertext with this exact hash.

        Raises :class:`ReceiptMismatchError` (nothing written, nothing deleted) when the hash is not
        the stored one, and :class:`SegmentNotFoundError` for an unknown or already purged stem. A
        repeated acknowledgement with the same hash is harmless and keeps the first receipt.
        """
        self._require_recovered()
        sha = ciphertext_sha256.lower() if isinstance(ciphertext_sha256, str) else ciphertext_sha256
        with self._lock:
            info = self._index.get(stem)
            if info is None:
                raise SegmentNotFoundError(f"acknowledgement for {stem!r}, which is not in the spool "
                                           "(never stored here, or already purged)")
            if sha != info.ciphertext_sha256:
                logger.error("spool: acknowledgement for %s names SHA-256 %s, stored is %s; ignored",
                             stem, ciphertext_sha256, info.ciphertext_sha256)
                raise ReceiptMismatchError(f"acknowledgement for {stem} names ciphertext {ciphertext_sha256!r}, "
                                           f"but the stored ciphertext is {info.ciphertext_sha256}; "
                                           "the segment stays pending")
            if info.acknowledged:
                return info
            record = {"stem": stem, "ciphertext_sha256": sha,
                      "acknowledged_at": iso_utc(self._clock()),
                      "receipt_b64": base64.b64encode(bytes(receipt_bytes)).decode("ascii")}
            data = json.dumps(record, sort_keys=True, indent=1).encode() + b"\n"
            path = self._path(stem, RECEIPT_SUFFIX)
            self._write_durably(path, data, f"recording the receipt of segment {stem}")
            fsync_dir(self.directory, "the spool directory")
            info = dataclasses.replace(info, acknowledged=True)
            self._index[stem] = info
        logger.info("spool: %s acknowledged by the back office (SHA-256 %s)", stem, sha)
        return info

    def purge(self, stem: str) -> None:
        """Delete an acknowledged segment; raises :class:`NotAcknowledgedError` without a matching receipt.

        The receipt on the card is re-read and checked, so the decision to delete rests on the durable
        record, not on memory. Deletion order (ciphertext, manifest, receipt, each followed by an fsync
        of the directory) lets recovery finish an interrupted purge instead of quarantining it.
        """
        self._require_recovered()
        with self._lock:
            info = self._index.get(stem)
            if info is None:
                raise SegmentNotFoundError(f"cannot purge {stem!r}: not in the spool")
            if not info.acknowledged or not self._receipt_names(stem, info.ciphertext_sha256):
                raise NotAcknowledgedError(f"refusing to purge {stem}: no receipt from the back office names "
                                           f"its ciphertext {info.ciphertext_sha256}")
            newest = max(self._index.values(), key=lambda i: (i.seq, i.stem))
            if newest is info and (self._chain_head is None or self._chain_head[0] < info.seq):
                self._keep_chain_head(stem, info.seq)
            for suffix in (AGE_SUFFIX, MANIFEST_SUFFIX, RECEIPT_SUFFIX):
                self._unlink(self._path(stem, suffix), missing_ok=False)
                fsync_dir(self.directory, "the spool directory")
            del self._index[stem]
        logger.info("spool: purged %s (acknowledged, SHA-256 %s)", stem, info.ciphertext_sha256)

    def _keep_chain_head(self, stem: str, seq: int) -> None:
        path = self._path(stem, MANIFEST_SUFFIX)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise storage_error(exc, path, "keeping the chain head") from exc
        self._write_durably(self.directory / CHAIN_HEAD_NAME, data, "keeping the chain head")
        fsync_dir(self.directory, "the spool directory")
        self._chain_head = (seq, data)

    # ------------------------------------------------------------------ helpers

    def _require_recovered(self) -> None:
        if not self._recovered:
            raise SpoolError(f"spool {self.directory} used before recover(); use Spool.open()")

    def _path(self, stem: str, suffix: str) -> Path:
        return self.directory / (stem + suffix)

    def _info(self, stem: str, seq: int, sha: str, manifest_len: int, acknowledged: bool) -> SegmentInfo:
        age, manifest = self._path(stem, AGE_SUFFIX), self._path(stem, MANIFEST_SUFFIX)
        try:
            size = age.stat().st_size
            stored_at = manifest.stat().st_mtime
        except OSError as exc:
            raise storage_error(exc, age, f"examining segment {stem}") from exc
        return SegmentInfo(stem, seq, sha, size, manifest_len, stored_at, acknowledged)

    def _receipt_names(self, stem: str, sha: str) -> bool:
        """True if ``<stem>.receipt.json`` is readable and names exactly ``stem`` and ``sha``."""
        path = self._path(stem, RECEIPT_SUFFIX)
        try:
            record = json.loads(path.read_bytes())
        except FileNotFoundError:
            return False
        except (ValueError, UnicodeDecodeError) as exc:
            logger.warning("spool: receipt %s unreadable: %s", path, exc)
            return False
        except OSError as exc:
            raise storage_error(exc, path, f"reading the receipt of {stem}") from exc
        return isinstance(record, dict) and record.get("stem") == stem and record.get("ciphertext_sha256") == sha

    def _hash_file(self, path: Path) -> str:
        h = hashlib.sha256()
        try:
            with open(path, "rb") as f:
                while chunk := f.read(_HASH_CHUNK):
                    h.update(chunk)
        except OSError as exc:
            raise storage_error(exc, path, "checking a stored ciphertext") from exc
        return h.hexdigest()

    @staticmethod
    def _write_durably(path: Path, data: bytes, action: str) -> None:
        """tmp -> write -> fsync -> rename; the caller fsyncs the directory. Removes its tmp on failure."""
        write_atomically(path, data, mode=FILE_MODE, sync_dir=False, tmp=path.with_name(path.name + TMP_SUFFIX),
                         what=action)

    @staticmethod
    def _unlink(path: Path, missing_ok: bool) -> None:
        try:
            path.unlink(missing_ok=missing_ok)
        except OSError as exc:
            raise storage_error(exc, path, "removing a spool file") from exc


class SegmentReader:
    """A stored segment open for reading pieces of its ciphertext (made by :meth:`Spool.open_segment`).

    Holds a file descriptor, not the bytes: a piece comes from the page cache (the open checked the whole
    file a moment earlier) or the card. The bytes were checked once when opened; the back office checks
    every piece again against the manifest. Reading from any thread is safe (``pread``); a purge does
    not disturb an open reader.
    """

    def __init__(self, info: SegmentInfo, manifest: bytes, fd: int, path: Path):
        self.info = info
        self.manifest = manifest
        self._fd: int | None = fd
        self._path = path

    @property
    def stem(self) -> str:
        return self.info.stem

    @property
    def size(self) -> int:
        return self.info.ciphertext_bytes

    def read(self, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` (fewer only at the end of the ciphertext)."""
        if self._fd is None:
            raise SpoolError(f"segment {self.stem}: reader already closed")
        try:
            data = os.pread(self._fd, length, offset)
            while len(data) < length and offset + len(data) < self.size:
                more = os.pread(self._fd, length - len(data), offset + len(data))
                if not more:
                    break
                data += more
        except OSError as exc:
            raise storage_error(exc, self._path, f"reading segment {self.stem}") from exc
        if len(data) != min(length, max(0, self.size - offset)):
            raise CorruptSegmentError(f"segment {self.stem}: the card returned {len(data)} bytes at offset {offset}, "
                                      "the file is shorter than its manifest says; the SD card may be failing")
        return data

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __enter__(self) -> SegmentReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class SegmentWriter:
    """One segment being stored: its ciphertext streams into ``<stem>.age.tmp`` as the sealer makes it.

    So no whole ciphertext has to be held in RAM. :meth:`commit` checks what was written against the
    manifest (size is implied by the SHA-256, which this writer computes itself), then makes the
    ciphertext and the manifest durable in the same order as always: ciphertext, directory, manifest,
    directory. Made by :meth:`Spool.begin`; owned by the writer thread.
    """

    def __init__(self, spool: Spool, stem: str):
        self._spool = spool
        self.stem = stem
        self._age = spool._path(stem, AGE_SUFFIX)
        self._tmp = self._age.with_name(self._age.name + TMP_SUFFIX)
        self._hash = hashlib.sha256()
        self._finished = False
        try:
            self._fd: int | None = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                                           FILE_MODE)
        except OSError as exc:
            raise storage_error(exc, self._tmp, f"writing the ciphertext of segment {stem}") from exc

    def __enter__(self) -> SegmentWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        if not self._finished:
            self.abort()

    def write(self, data) -> None:
        """Append ciphertext bytes (any bytes-like object)."""
        if self._fd is None:
            raise SpoolError(f"segment {self.stem}: writer already closed")
        view = memoryview(data)
        self._hash.update(view)
        try:
            while view:
                view = view[os.write(self._fd, view):]
        except OSError as exc:
            raise storage_error(exc, self._tmp, f"writing the ciphertext of segment {self.stem}") from exc

    def commit(self, manifest: bytes, seq: int, ciphertext_sha256: str) -> SegmentInfo:
        """Check the manifest against the written bytes and make both durable; the segment is then stored."""
        if self._fd is None:
            raise SpoolError(f"segment {self.stem}: writer already closed")
        sha = self._hash.hexdigest()
        if ciphertext_sha256 != sha:
            raise InvalidSegmentError(f"segment {self.stem}: its ciphertext hashes to {sha}, not to the "
                                      f"claimed {ciphertext_sha256}; not stored")
        _check_manifest(self.stem, manifest, seq, sha)
        spool, action = self._spool, f"writing the ciphertext of segment {self.stem}"
        manifest_path = spool._path(self.stem, MANIFEST_SUFFIX)
        try:
            try:
                fd, self._fd = self._fd, None
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.rename(self._tmp, self._age)
            except OSError as exc:
                raise storage_error(exc, self._age, action) from exc
            fsync_dir(spool.directory, "the spool directory")  # the ciphertext's name is durable before the manifest's
            spool._write_durably(manifest_path, manifest, f"writing the manifest of segment {self.stem}")
            fsync_dir(spool.directory, "the spool directory")
        except BaseException:
            # Not committed: take back what was written so a retry starts clean. If the manifest
            # rename did happen, the fsync that failed leaves its durability unknown, so keep it all.
            if not manifest_path.exists():
                Spool._unlink(self._tmp, missing_ok=True)
                Spool._unlink(self._age, missing_ok=True)
            self._finished = True
            spool._committed(self, None)
            raise
        info = spool._info(self.stem, seq, sha, len(manifest), acknowledged=False)
        self._finished = True
        spool._committed(self, info)
        return info

    def abort(self) -> None:
        """Give the segment up: remove what was written (it was never committed)."""
        if self._finished:
            return
        self._finished = True
        try:
            if self._fd is not None:
                fd, self._fd = self._fd, None
                os.close(fd)
            Spool._unlink(self._tmp, missing_ok=True)
        finally:
            self._spool._committed(self, None)


@dataclass
class _Recovery:
    index: dict[str, SegmentInfo] = dataclasses.field(default_factory=dict)
    discarded: list[FileAction] = dataclasses.field(default_factory=list)
    quarantined: list[FileAction] = dataclasses.field(default_factory=list)
    purges: list[str] = dataclasses.field(default_factory=list)


def _check_stem(stem) -> str:
    if not is_stem(stem):
        raise InvalidSegmentError(f"segment stem {stem!r} is not <device id>-<10-digit sequence number>")
    return stem


def _stem_of(name: str) -> str | None:
    """The stem of a spool file name (tmp suffix ignored), or None for a name the spool never writes."""
    if name.endswith(TMP_SUFFIX):
        name = name[: -len(TMP_SUFFIX)]
    for suffix in (MANIFEST_SUFFIX, RECEIPT_SUFFIX, AGE_SUFFIX):
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
            return stem if is_stem(stem) else None
    return None


def _seq_of(stem: str) -> int | None:
    """The sequence number a sealed segment's stem ends in (``<device>-<seq:010d>``), or None."""
    match = re.fullmatch(r".+-(\d{10})", stem)
    return int(match.group(1)) if match else None


def _tmp_reason(name: str) -> str:
    base = name[: -len(TMP_SUFFIX)]
    if base.endswith(RECEIPT_SUFFIX):
        return "receipt write interrupted (power loss or crash); the segment stays pending and is acknowledged again"
    if base == CHAIN_HEAD_NAME:
        return "chain-head copy interrupted (power loss or crash); the segment it copies is still stored"
    return "write interrupted (power loss or crash); the segment being stored is lost"


def _check_manifest(stem: str, manifest: bytes, seq: int, sha: str) -> None:
    """The manifest must name the segment's seq and the SHA-256 of the ciphertext actually written."""
    try:
        named_seq, named_sha = _parse_manifest(manifest)
    except InvalidSegmentError as exc:
        raise InvalidSegmentError(f"segment {stem}: {exc}; not stored") from None
    if named_sha != sha or named_seq != seq:
        raise InvalidSegmentError(f"segment {stem}: manifest names seq {named_seq} and ciphertext {named_sha}, "
                                  f"the segment has seq {seq} and ciphertext {sha}; not stored")


def _parse_manifest(data: bytes) -> tuple[int, str]:
    """(seq, ciphertext_sha256) from a manifest; :class:`InvalidSegmentError` naming what is wrong."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidSegmentError(f"manifest is not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise InvalidSegmentError("manifest is not a JSON object")
    seq, sha = doc.get("seq"), doc.get("ciphertext_sha256")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise InvalidSegmentError(f"manifest 'seq' must be a non-negative integer, not {seq!r}")
    if not isinstance(sha, str) or not _SHA256_RE.fullmatch(sha):
        raise InvalidSegmentError(f"manifest 'ciphertext_sha256' must be 64 lower-case hex digits, not {sha!r}")
    return seq, sha


