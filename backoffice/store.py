"""The back office's evidence store and the temporary area where segments are reassembled.

Layout (all state is on disk, none in a receiver's memory, so several receivers sharing one
filesystem can split a fleet's traffic, and a receiver restarted mid-transfer loses nothing)::

    <store_dir>/<site>/<device>/<incident>/<stem>.age            ciphertext, exactly the device's bytes
    <store_dir>/<site>/<device>/<incident>/<stem>.manifest.json  the signed manifest (the commit point)
    <store_dir>/<site>/<device>/.receipts/<stem>.receipt.json    the signed receipt; also the index by stem
    <incoming_dir>/<site>/<device>/<stem>.<chunk_size>/offer.json             the offer being received
    <incoming_dir>/<site>/<device>/<stem>.<chunk_size>/data                   chunks, each at its offset
    <incoming_dir>/<site>/<device>/<stem>.<chunk_size>/<index>.<sha256>.part  empty: "chunk <index> is in data"

``bodycam verify`` and ``bodycam export`` read the store unchanged: they look for ``*.age`` and
``*.manifest.json`` recursively, and check that every receipt's segment is there. The catalog's retention
deletes an incident's ``.age`` and manifests and leaves ``<incident>/incident.tombstone.json``; the receipts
stay: they are the office's signed word that it held each segment, which the tombstone then accounts for. ``<incident>`` is the
incident id when it is a safe directory name, else ``incident-<sha256 of the id, 16 hex>``.

Writing and checking: a chunk's bytes are written at their offset into ``data``, then its marker is
created, without fsync (a marker therefore means "written", not "durable"). When every marker is there
the data file is hashed once, and that hash must be the signed manifest's; only if it is not is each
chunk checked against the hash in its marker's name, so a chunk torn by a crash or damaged on the way is
found and asked for again. (Checking every chunk on arrival as well would double the receiver's
hashing; TLS already protects the transit.) Then the data file is fsynced and renamed into the store
(a copy when ``incoming_dir`` is on another filesystem), then the manifest is written (tmp -> fsync ->
rename -> fsync dir: the commit point), then the receipt -- and only then is the receipt sent. Chunk
sizes are multiples of 4 KiB, so receivers writing different chunks of one data file over NFS never
share a page. Evidence is never overwritten: a different manifest for a stored stem is a conflict.

Several receivers: an ``O_EXCL`` lock file in the partial directory lets exactly one of them assemble
a complete segment; a lock older than :data:`STALE_LOCK_S` (its holder died) is broken.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from base.durable import fsync_dir, write_atomically
from base.errors import BodycamError, StorageError
from evidence.seal import Manifest, ManifestError
from evidence.tombstone import FILE_NAME as TOMBSTONE_FILE

from comms.protocol import Offer, chunk_count
from evidence.receipts import ReceiptError, parse_receipt

logger = logging.getLogger(__name__)

RECEIPTS_DIR = ".receipts"
RECEIPT_SUFFIX = ".receipt.json"
OFFER_NAME = "offer.json"
DATA_NAME = "data"
LOCK_NAME = "assembling.lock"
PART_SUFFIX = ".part"
STALE_LOCK_S = 120.0
_SAFE_DIR = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_PART = re.compile(r"(\d{6,})\.([0-9a-f]{64})\.part")
_COPY = 1024 * 1024


class StoreError(BodycamError):
    """The evidence store or the temporary area refused a read or write."""


class ConflictError(StoreError):
    """A different segment already holds this stem; evidence is never overwritten."""

    def __init__(self, message: str, stem: str):
        super().__init__(message)
        #: Named in the rejection, so the device parks exactly this segment.
        self.stem = stem


class PartialGoneError(StoreError):
    """The partial segment was removed meanwhile (stored by another receiver of the group, or expired)."""


def incident_dir_name(incident_id: str) -> str:
    """The incident's directory name: the id itself when safe, else a stable hash of it."""
    if _SAFE_DIR.fullmatch(incident_id) and ".." not in incident_id:
        return incident_id
    return "incident-" + hashlib.sha256(incident_id.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class StoredSegment:
    """A segment in the store: where its files are and its receipt (None in the crash window before it).

    ``deleted``: it was stored and acknowledged, then deleted under its incident's retention rule (its files
    are gone, its receipt and the incident's tombstone remain).
    """

    manifest: Manifest
    age_path: Path
    manifest_path: Path
    receipt: bytes | None
    deleted: bool = False


class Partial:
    """The chunks received so far for one offer (one stem and chunk size)."""

    def __init__(self, directory: Path):
        self.directory = directory

    @property
    def exists(self) -> bool:
        return (self.directory / OFFER_NAME).exists()

    def read_offer(self) -> Offer | None:
        try:
            return Offer.decode((self.directory / OFFER_NAME).read_bytes())
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read {self.directory / OFFER_NAME} ({exc.strerror})") from None

    def write_offer(self, offer: Offer) -> None:
        """Record the offer (atomically; the same offer from another receiver writes the same bytes)."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            write_atomically(self.directory / OFFER_NAME, offer.encode(), durable=False)
        except OSError as exc:
            raise StoreError(f"cannot write the offer into {self.directory} ({exc.strerror})") from None

    def parts(self) -> dict[int, str]:
        """Chunk index -> marker name, for the chunks written into the data file."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise StoreError(f"cannot list {self.directory} ({exc.strerror})") from None
        found = {}
        for name in names:
            m = _PART.fullmatch(name)
            if m:
                found[int(m.group(1))] = name
        return found

    @property
    def data_path(self) -> Path:
        return self.directory / DATA_NAME

    def put(self, index: int, offset: int, sha256: str, data) -> None:
        """Write one chunk at its offset, then its marker (named with the hash the device gave for it)."""
        try:
            fd = os.open(self.data_path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o640)
            try:
                view = memoryview(data)
                while view:
                    written = os.pwrite(fd, view, offset)
                    view, offset = view[written:], offset + written
            finally:
                os.close(fd)
            os.close(os.open(self.directory / f"{index:06d}.{sha256}{PART_SUFFIX}",
                             os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o640))
        except FileNotFoundError:
            raise PartialGoneError(f"the partial segment {self.directory.name} was removed meanwhile") from None
        except OSError as exc:
            raise StoreError(f"cannot write chunk {index} into {self.directory} ({exc.strerror})") from None

    def drop(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.directory / name).unlink()

    @contextlib.contextmanager
    def assembly_lock(self):
        """Yields True for the one receiver that may assemble now, False for the others."""
        path = self.directory / LOCK_NAME
        fd = _try_lock(path)
        if fd is None:
            try:
                age = time.time() - path.stat().st_mtime
            except FileNotFoundError:  # released meanwhile, or the folder is gone (stored by another receiver)
                age = None
            if age is None:
                fd = _try_lock(path)
            elif age >= STALE_LOCK_S:
                logger.warning("breaking a stale assembly lock %s (%.0f s old)", path, age)
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                fd = _try_lock(path)
        if fd is None:
            yield False
            return
        try:
            yield True
        finally:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _try_lock(path: Path) -> int | None:
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return None
    except FileNotFoundError:
        return None  # the directory was removed: someone else finished
    except OSError as exc:
        raise StoreError(f"cannot create the assembly lock {path} ({exc.strerror})") from None


class EvidenceStore:
    """Final store plus temporary area; see the module docstring for layout and guarantees."""

    def __init__(self, store_dir: str | os.PathLike, incoming_dir: str | os.PathLike):
        self.root = Path(store_dir)
        self.incoming = Path(incoming_dir)
        for d in (self.root, self.incoming):
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create {d} ({exc.strerror}); check the receiver's config and "
                                 "permissions") from None

    # -- temporary area ---------------------------------------------------------------------------------
    def partial(self, site: str, device: str, stem: str, chunk_size: int) -> Partial:
        return Partial(self.incoming / site / device / f"{stem}.{chunk_size}")

    def expire_partials(self, max_age_s: float) -> int:
        """Delete partial segments untouched for ``max_age_s``; returns how many."""
        removed = 0
        now = time.time()
        for d in self.incoming.glob("*/*/*"):
            try:
                newest = max([d.stat().st_mtime] + [p.stat().st_mtime for p in d.iterdir()])
            except OSError:
                continue
            if now - newest > max_age_s:
                logger.warning("deleting partial segment %s: no chunk for %.1f h", d, (now - newest) / 3600)
                shutil.rmtree(d, ignore_errors=True)
                removed += 1
        return removed

    # -- final store ------------------------------------------------------------------------------------
    def device_dir(self, site: str, device: str) -> Path:
        return self.root / site / device

    def receipt_path(self, site: str, device: str, stem: str) -> Path:
        return self.device_dir(site, device) / RECEIPTS_DIR / f"{stem}{RECEIPT_SUFFIX}"

    def paths(self, manifest: Manifest) -> tuple[Path, Path]:
        folder = self.device_dir(manifest.site, manifest.device_id) / incident_dir_name(manifest.incident_id)
        return folder / f"{manifest.stem}.age", folder / f"{manifest.stem}.manifest.json"

    def read_receipt(self, site: str, device: str, stem: str) -> bytes | None:
        try:
            return self.receipt_path(site, device, stem).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read the receipt of {stem} ({exc.strerror})") from None

    def lookup(self, manifest: Manifest) -> StoredSegment | None:
        """The stored segment with ``manifest``'s stem; raises :class:`ConflictError` if it is another one."""
        receipt = self.read_receipt(manifest.site, manifest.device_id, manifest.stem)
        if receipt is not None:
            try:
                parsed, _ = parse_receipt(receipt)
            except ReceiptError as exc:
                raise StoreError(f"stored receipt of {manifest.stem} is damaged: {exc}") from None
            if parsed.manifest_sha256 != manifest.sha256:
                raise ConflictError(f"{manifest.stem} is already stored with manifest {parsed.manifest_sha256[:16]}…; "
                                    f"this one is {manifest.sha256[:16]}… (a forked chain or a reused sequence "
                                    "number); the stored evidence is kept", manifest.stem)
        age, man = self.paths(manifest)
        try:
            stored = man.read_bytes()
        except FileNotFoundError:
            if receipt is not None and _tombstone_names(man.parent, manifest):
                logger.info("%s was stored and later deleted under its incident's rule (tombstone); its receipt "
                            "is the answer", manifest.stem)
                return StoredSegment(manifest, age, man, receipt, deleted=True)
            if receipt is not None:
                raise StoreError(f"receipt of {manifest.stem} exists but its manifest {man} is missing") from None
            return None
        except OSError as exc:
            raise StoreError(f"cannot read {man} ({exc.strerror})") from None
        if stored != manifest.raw:
            raise ConflictError(f"{man} holds a different manifest; the stored evidence is kept", manifest.stem)
        return StoredSegment(manifest, age, man, receipt)

    def commit(self, manifest: Manifest, partial: Partial) -> tuple[bool, set[int]]:
        """Check the complete data file against the manifest, move it into the store, write the manifest.

        Returns (True, ∅) when stored; (False, chunks) when chunks were missing or damaged (damaged
        ones lose their marker so the device sends them again). Raises :class:`StoreError` when every
        chunk is as the device described it and the whole still does not match the signed manifest
        (all chunks are then dropped), or when the disk refuses.
        """
        age, man = self.paths(manifest)
        chunk_size = int(partial.directory.name.rsplit(".", 1)[1])
        count = chunk_count(manifest.ciphertext_bytes, chunk_size)
        parts = partial.parts()
        missing = {i for i in range(count) if i not in parts}
        if missing:
            return False, missing
        digest, size = _hash_file(partial.data_path)
        if digest is None:  # markers without data: a crash after the data file was moved, or it was deleted
            for name in parts.values():
                partial.drop(name)
            return False, set(range(count))
        if size != manifest.ciphertext_bytes or digest != manifest.ciphertext_sha256:
            damaged = self._damaged(manifest, partial, parts, chunk_size)
            if damaged:
                return False, damaged
            partial.remove()
            raise StoreError(f"{manifest.stem}: the assembled ciphertext hashes to {digest[:16]}…, the signed "
                             f"manifest names {manifest.ciphertext_sha256[:16]}…; all chunks dropped")
        try:
            age.parent.mkdir(parents=True, exist_ok=True)
            _fsync_file(partial.data_path)
            _move(partial.data_path, age)
            fsync_dir(age.parent, f"storing {manifest.stem}")  # the ciphertext's name is durable before the manifest's
            write_atomically(man, manifest.raw)
        except OSError as exc:
            raise StoreError(f"cannot store {manifest.stem} in {age.parent} ({exc.strerror})") from None
        except StorageError as exc:
            raise StoreError(f"cannot store {manifest.stem}: {exc}") from None
        return True, set()

    def _damaged(self, manifest: Manifest, partial: Partial, parts: dict[int, str], chunk_size: int) -> set[int]:
        """Chunks whose bytes in the data file do not match the hash in their marker; their markers are dropped."""
        damaged = set()
        try:
            with open(partial.data_path, "rb") as fh:
                for index, name in sorted(parts.items()):
                    fh.seek(index * chunk_size)
                    expected_len = min(chunk_size, manifest.ciphertext_bytes - index * chunk_size)
                    data = fh.read(expected_len)
                    if len(data) != expected_len or hashlib.sha256(data).hexdigest() != _PART.fullmatch(name).group(2):
                        logger.warning("chunk %d of %s does not match its hash (damaged in transit or on disk); "
                                       "asking for it again", index, manifest.stem)
                        partial.drop(name)
                        damaged.add(index)
        except OSError as exc:
            raise StoreError(f"cannot read {partial.data_path} ({exc.strerror})") from None
        return damaged

    def verify_stored(self, stored: StoredSegment) -> bool:
        """True if the stored ciphertext still hashes to the manifest's value (used in the crash window)."""
        h = hashlib.sha256()
        try:
            with open(stored.age_path, "rb") as fh:
                while block := fh.read(_COPY):
                    h.update(block)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StoreError(f"cannot read {stored.age_path} ({exc.strerror})") from None
        return h.hexdigest() == stored.manifest.ciphertext_sha256

    def write_receipt(self, manifest: Manifest, data: bytes) -> bytes:
        """Store the segment's receipt unless one is stored already; returns the one that stands.

        Never replaced: two receivers of a group (or a re-offer racing the first acknowledgement) may both
        sign one, and every device, then and later, must get the same bytes."""
        path = self.receipt_path(manifest.site, manifest.device_id, manifest.stem)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, data, replace=False)
            return data
        except FileExistsError:
            kept = self.read_receipt(manifest.site, manifest.device_id, manifest.stem)
            if kept is None:
                raise StoreError(f"the receipt {path} vanished while it was being written") from None
            return kept
        except OSError as exc:
            raise StoreError(f"cannot write the receipt {path} ({exc.strerror})") from None
        except StorageError as exc:
            raise StoreError(f"cannot write the receipt: {exc}") from None

    # -- the chain ----------------------------------------------------------------------------------------
    def _receipt_doc(self, site: str, device: str, stem: str) -> dict | None:
        data = self.read_receipt(site, device, stem)
        if data is None:
            return None
        try:
            return json.loads(data)
        except ValueError:
            return None

    def chain_position(self, manifest: Manifest) -> str:
        """``first``, ``linked``, ``pending`` or ``broken``: the new segment against its stored predecessor.

        Also checks the stored successor (segments may arrive out of order) and logs a break there.
        """
        site, device = manifest.site, manifest.device_id
        if manifest.seq == 1:
            state = "first" if manifest.prev_manifest_sha256 is None else "broken"
        else:
            prev = self._receipt_doc(site, device, f"{device}-{manifest.seq - 1:010d}")
            if prev is None:
                state = "pending"
            elif manifest.prev_manifest_sha256 == prev.get("manifest_sha256"):
                state = "linked"
            else:
                state = "broken"
        nxt = self._receipt_doc(site, device, f"{device}-{manifest.seq + 1:010d}")
        if nxt is not None:
            next_manifest = self._stored_manifest(site, device, nxt)
            if next_manifest is not None and next_manifest.prev_manifest_sha256 != manifest.sha256:
                logger.error("chain broken: %s-%010d names a previous manifest other than %s", device,
                             manifest.seq + 1, manifest.stem)
        if state == "broken":
            logger.error("chain broken: %s does not link to the stored seq %d of device %s", manifest.stem,
                         manifest.seq - 1, device)
        return state

    def _stored_manifest(self, site: str, device: str, receipt_doc: dict) -> Manifest | None:
        stem, incident = receipt_doc.get("stem"), receipt_doc.get("incident_id")
        if not isinstance(stem, str) or not isinstance(incident, str):
            return None
        path = self.device_dir(site, device) / incident_dir_name(incident) / f"{stem}.manifest.json"
        try:
            return Manifest.parse(path.read_bytes())
        except (OSError, ManifestError):
            return None

    def stored_seqs(self, site: str, device: str) -> list[int]:
        folder = self.device_dir(site, device) / RECEIPTS_DIR
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StoreError(f"cannot list {folder} ({exc.strerror})") from None
        prefix = f"{device}-"
        return sorted(int(n[len(prefix):len(prefix) + 10]) for n in names
                      if n.startswith(prefix) and n.endswith(RECEIPT_SUFFIX) and n[len(prefix):len(prefix) + 10].isdigit())

    def gaps(self, site: str, device: str) -> list[tuple[int, int]]:
        """Missing seq ranges (inclusive) between the oldest and newest stored segment of a device."""
        seqs = self.stored_seqs(site, device)
        out, expected = [], seqs[0] if seqs else 1
        for seq in seqs:
            if seq > expected:
                out.append((expected, seq - 1))
            expected = seq + 1
        return out

    def devices(self) -> list[tuple[str, str]]:
        return sorted((d.parent.name, d.name) for d in self.root.glob("*/*") if (d / RECEIPTS_DIR).is_dir())


def _tombstone_names(folder: Path, manifest: Manifest) -> bool:
    """True if the incident's tombstone lists exactly this segment (stem and manifest hash) as deleted.

    Its signature is not checked here: this is the receiver's own store, and the receipt it signed already
    names this manifest; the tombstone only tells a deletion by rule from files lost.
    """
    try:
        doc = json.loads((folder / TOMBSTONE_FILE).read_bytes())
    except FileNotFoundError:
        return False
    except (OSError, ValueError) as exc:
        logger.error("cannot read the tombstone in %s: %s", folder, exc)
        return False
    segments = doc.get("segments") if isinstance(doc, dict) else None
    return isinstance(segments, list) and any(
        isinstance(seg, dict) and seg.get("stem") == manifest.stem and seg.get("manifest_sha256") == manifest.sha256
        for seg in segments)


def _hash_file(path: Path) -> tuple[str | None, int]:
    """(SHA-256 hex, size) of a file, or (None, 0) when it does not exist."""
    h = hashlib.sha256()
    size = 0
    try:
        with open(path, "rb") as fh:
            while block := fh.read(_COPY):
                h.update(block)
                size += len(block)
    except FileNotFoundError:
        return None, 0
    except OSError as exc:
        raise StoreError(f"cannot read {path} ({exc.strerror})") from None
    return h.hexdigest(), size


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _move(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst``; across filesystems, copy to a tmp beside ``dst``, fsync, rename."""
    try:
        os.replace(src, dst)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(src, tmp)
        _fsync_file(tmp)
        os.replace(tmp, dst)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    src.unlink()


