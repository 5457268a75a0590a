"""Check sealed segments on disk with public keys only: signatures, ciphertext hashes, chain and completeness.

Anyone with the enrolled ``device.pub`` files can run this (court, defence, data-protection officer); no
private key is involved. What it can and cannot prove:

* each manifest was signed by an enrolled device and its ``.age`` file is the one the device sealed;
* per device, sequence numbers are contiguous and each manifest names the hash of its predecessor, so a
  removed, inserted, reordered or swapped segment between two present ones is found;
* per incident, segment indices run 0..final without holes and the final segment is present;
* an incident that a device restart cut off (crash, power loss) ends in a signed end marker instead of
  its final segment: reported as a cut, with the restart time and a bound on what was lost, not as a gap.

What the chain alone cannot show is a deletion at either end: the oldest incidents (the set then simply
starts later) or the newest (it simply ends earlier). So:

* a set that starts after seq 1 is a finding, unless the caller names the seq it is meant to start at
  (``first_seqs``, ``--first-seq``: a spool whose older segments were uploaded and purged);
* the device publishes its chain head (seq and manifest hash, in telemetry and its status document);
  given as ``heads`` (``--head``), everything after the newest segment held up to it is reported
  missing, and a different manifest at the head's seq is a replaced chain;
* the back office's receipts (``.receipts/*.receipt.json``, and the spool's ``*.receipt.json``) each
  name a segment that was stored; a receipt whose segment is missing or different is a finding.

Segments the back office deleted under its retention rules are named in signed tombstones
(``incident.tombstone.json``, :mod:`evidence.tombstone`). Given the office's public key (``office_key``,
``--office-key``), a verified tombstone turns its segments' gap into a reported deletion ("deleted on D
under rule R, decided by A and B") -- but only where the chain agrees: the manifest after a deleted
segment must name the tombstone's manifest hash for it. Without the key, tombstones are not trusted.

Only manifests whose signature verifies are trusted for the chain and incident checks; a segment that
fails verification therefore also shows up as a gap.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import logging
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from base.errors import BodycamError
from base.utctime import parse_iso_utc
from .keys import DevicePublicKey
from .receipts import ReceiptError, parse_receipt, verify_receipt
from .seal import CIPHERTEXT_SUFFIX, MANIFEST_SUFFIX, Manifest, ManifestError, verify_manifest
from .spool import RECEIPT_SUFFIX
from .tombstone import FILE_NAME as TOMBSTONE_FILE
from .tombstone import Tombstone, TombstoneError, read_tombstone

logger = logging.getLogger(__name__)


class VerifyInputError(BodycamError):
    """The paths to verify do not exist or hold no sealed segments."""


@dataclass(frozen=True)
class SegmentResult:
    """The verdict on one stem. ``manifest`` is set when the manifest parsed; ``signature_ok`` says whether to
    trust it."""

    stem: str
    manifest_path: Path | None
    ciphertext_path: Path | None
    manifest: Manifest | None
    signature_ok: bool
    problems: tuple[str, ...]
    #: SHA-256 (hex) of the .age file as found on disk, when it was readable.
    ciphertext_file_sha256: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        m = self.manifest
        d = {"stem": self.stem, "ok": self.ok, "problems": list(self.problems), "signature_ok": self.signature_ok,
             "manifest_path": _str(self.manifest_path), "ciphertext_path": _str(self.ciphertext_path)}
        if m is not None:
            d.update(kind="incident_end" if m.is_end_marker else "segment",
                     device_id=m.device_id, incident_id=m.incident_id, seq=m.seq, segment_index=m.segment_index,
                     final=m.final, start_time=m.start_time, end_time=m.end_time, clock_sync=m.clock_sync,
                     frame_count=m.frame_count, manifest_sha256=m.sha256, ciphertext_sha256=m.ciphertext_sha256,
                     officer=m.officer)
        return d


@dataclass(frozen=True)
class Problem:
    """A finding about the set rather than one file: a gap, a broken link, an incomplete incident.

    ``device_id``/``incident_id`` say what it concerns; an incident id is set only when the problem lies
    inside that incident (export uses this to decide what blocks it).
    """

    kind: str
    message: str
    device_id: str | None = None
    incident_id: str | None = None
    stem: str | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class ChainHead:
    """A device's published chain head: its newest sealed seq and (if known) that manifest's SHA-256."""

    seq: int
    manifest_sha256: str | None = None
    #: The device it belongs to; None means "the one device in the set".
    device_id: str | None = None


@dataclass(frozen=True)
class Cut:
    """An incident closed by a signed end marker: the device restarted while it was being recorded.

    What was recorded after ``last_frame_time`` was in the device's RAM and is lost; the restart at
    ``restart_time`` bounds it from above (``lost_up_to_s``; the device clock's, see ``clock_sync``).
    When the device clock at the restart was behind the last frame, there is no bound (None).
    """

    device_id: str
    incident_id: str
    stem: str
    reason: str
    restart_time: str
    last_frame_time: str
    lost_up_to_s: float | None
    clock_sync: str

    @property
    def message(self) -> str:
        lost = (f"up to {self.lost_up_to_s:.1f} s lost" if self.lost_up_to_s is not None else
                f"how much was lost is unknown (the device clock, {self.clock_sync}, was behind at the restart)")
        return (f"device {self.device_id}: incident {self.incident_id} cut by device {self.reason} at "
                f"{self.restart_time}; last sealed frame ends {self.last_frame_time}, {lost} (end marker {self.stem})")

    def to_dict(self) -> dict:
        return {**self.__dict__, "message": self.message}


@dataclass(frozen=True)
class Report:
    segments: tuple[SegmentResult, ...]
    problems: tuple[Problem, ...]
    notes: tuple[str, ...] = ()
    devices_checked: tuple[str, ...] = field(default=())
    #: Incidents that a device restart cut off, each closed by a signed end marker (not a problem).
    cuts: tuple[Cut, ...] = ()
    #: Incidents the back office deleted, from tombstones whose signature verified (not a problem).
    deletions: tuple[Tombstone, ...] = ()

    def cut_of(self, device_id: str, incident_id: str) -> Cut | None:
        return next((c for c in self.cuts if (c.device_id, c.incident_id) == (device_id, incident_id)), None)

    @property
    def ok(self) -> bool:
        return not self.problems and all(s.ok for s in self.segments)

    def trusted(self) -> list[SegmentResult]:
        """Segments whose manifest signature verified, by device and seq."""
        return sorted((s for s in self.segments if s.signature_ok),
                      key=lambda s: (s.manifest.device_id, s.manifest.seq))

    def incidents(self) -> dict[tuple[str, str], list[SegmentResult]]:
        """Trusted segments grouped by (device id, incident id), in segment-index order."""
        groups: dict[tuple[str, str], list[SegmentResult]] = defaultdict(list)
        for s in self.trusted():
            groups[(s.manifest.device_id, s.manifest.incident_id)].append(s)
        return {k: sorted(v, key=lambda s: (s.manifest.segment_index, s.manifest.seq)) for k, v in groups.items()}

    def problems_for(self, device_id: str, incident_id: str) -> list[str]:
        """Everything wrong with one incident: its segments' problems and the gaps inside it.

        A segment whose manifest cannot even be read names no incident; when the incident has a gap
        where it sits, its problems come first, as the root cause of that gap.
        """
        found = [f"{s.stem}: {p}" for s in self.segments if s.manifest is not None
                 and (s.manifest.device_id, s.manifest.incident_id) == (device_id, incident_id) for p in s.problems]
        found += [p.message for p in self.problems if (p.device_id, p.incident_id) == (device_id, incident_id)]
        return self._unreadable_within(device_id, incident_id) + found if found else found

    def _unreadable_within(self, device_id: str, incident_id: str) -> list[str]:
        """Problems of unreadable manifests whose seq lies inside the incident or right after its last segment."""
        seqs = [s.manifest.seq for s in self.trusted() if (s.manifest.device_id, s.manifest.incident_id)
                == (device_id, incident_id)]
        if not seqs:
            return []
        prefix = f"{device_id}-"
        out = []
        for s in self.segments:
            tail = s.stem[len(prefix):]
            if s.manifest is None and s.stem.startswith(prefix) and tail.isdigit() and len(tail) == 10 \
                    and min(seqs) < int(tail) <= max(seqs) + 1:
                out += [f"{s.stem}: {p}" for p in s.problems]
        return out

    def lines(self) -> list[str]:
        """One line per bad segment and per set-level problem, for people."""
        out = [f"{s.stem}: {p}" for s in self.segments for p in s.problems]
        out += [p.message for p in self.problems]
        return out

    def to_dict(self) -> dict:
        incidents = []
        for (device, incident), segs in sorted(self.incidents().items()):
            problems = self.problems_for(device, incident)
            cut = self.cut_of(device, incident)
            incidents.append({"device_id": device, "incident_id": incident, "segments": len(segs),
                              "start_time": min(s.manifest.start_time for s in segs),
                              "end_time": max(s.manifest.end_time for s in segs),
                              "ok": not problems, "problems": problems, "cut": cut.to_dict() if cut else None})
        return {"ok": self.ok, "segments_checked": len(self.segments),
                "segments_bad": sum(not s.ok for s in self.segments), "devices": list(self.devices_checked),
                "incidents": incidents, "problems": [p.to_dict() for p in self.problems],
                "cuts": [c.to_dict() for c in self.cuts],
                "deletions": [{**t.doc, "message": t.message()} for t in self.deletions],
                "notes": list(self.notes), "segments": [s.to_dict() for s in self.segments]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)


def verify_paths(paths: Iterable[str | os.PathLike], devices: Mapping[str, DevicePublicKey], *,
                 heads: Iterable[ChainHead] = (), first_seqs: Mapping[str | None, int] | None = None,
                 receipt_key=None, office_key=None) -> Report:
    """Verify every sealed segment found (recursively) under ``paths`` against the enrolled ``devices``.

    ``devices`` maps key id to key, as :func:`evidence.keys.load_device_public_keys` returns. ``heads``:
    chain heads the devices published; ``first_seqs``: the seq each device's set is meant to start at
    (key None: the one device in the set); ``receipt_key``: the back office's receipt public key, to
    check the receipts' signatures too (without it their content is still checked); ``office_key``: the
    back office's public key, to take its signed tombstones into account.
    """
    paths = list(paths)
    files = find_segments(paths)
    tombstone_files = _find_named(paths, TOMBSTONE_FILE)
    if not files and not tombstone_files:
        raise VerifyInputError("no sealed segments (*.age, *.manifest.json) found in the given paths")
    notes: list[str] = []
    problems: list[Problem] = []
    deletions = _read_tombstones(tombstone_files, office_key, problems, notes)
    deleted: dict[str, dict[int, dict]] = defaultdict(dict)
    for t in deletions:
        for seg in t.segments:
            deleted[t.device_id][seg["seq"]] = seg
    results = [_check_files(stem, mans, ages, devices, notes) for stem, (mans, ages) in sorted(files.items())]
    results = _mark_swaps(results)
    trusted = [r.manifest for r in results if r.signature_ok]
    by_device: dict[str, list[Manifest]] = defaultdict(list)
    for m in trusted:
        by_device[m.device_id].append(m)
    heads_by_device = _per_device({h.device_id: h for h in heads}, by_device, "--head")
    first_by_device = _per_device(dict(first_seqs or {}), by_device, "--first-seq")
    for device, manifests in sorted(by_device.items()):
        _check_chain(device, manifests, problems, notes, first_by_device.get(device), deleted.get(device, {}))
        _check_incidents(device, manifests, problems)
    for device, head in sorted(heads_by_device.items()):
        _check_head(device, head, by_device.get(device, []), problems, deleted.get(device, {}))
    _check_receipts(find_receipts(paths), trusted, problems, receipt_key, deleted)
    cuts = tuple(_cut(m) for m in sorted(trusted, key=lambda m: (m.device_id, m.seq)) if m.is_end_marker)
    report = Report(tuple(results), tuple(problems), tuple(notes), tuple(sorted(by_device)), cuts, tuple(deletions))
    logger.info("verified %d segment(s): %d bad, %d set problem(s)", len(results),
                sum(not r.ok for r in results), len(problems))
    return report


def find_segments(paths: Iterable[str | os.PathLike]) -> dict[str, tuple[list[Path], list[Path]]]:
    """Map each stem to the manifest and ciphertext files found for it (lists: copies may exist twice)."""
    found: dict[str, tuple[list[Path], list[Path]]] = defaultdict(lambda: ([], []))
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            candidates = sorted(p for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            candidates = [path]
        else:
            raise VerifyInputError(f"{path}: no such file or directory")
        for p in candidates:
            if p.name.endswith(MANIFEST_SUFFIX):
                found[p.name[:-len(MANIFEST_SUFFIX)]][0].append(p)
            elif p.name.endswith(CIPHERTEXT_SUFFIX):
                found[p.name[:-len(CIPHERTEXT_SUFFIX)]][1].append(p)
    return dict(found)


def _find_named(paths: list, name: str) -> list[Path]:
    found = []
    for raw in paths:
        path = Path(raw)
        candidates = path.rglob(name) if path.is_dir() else [path]
        found += [p for p in candidates if p.is_file() and p.name == name]
    return sorted(set(found))


def _read_tombstones(paths: list[Path], office_key, problems: list[Problem], notes: list[str]) -> list[Tombstone]:
    """The tombstones whose signature verifies; a bad one is a problem, unverifiable ones (no key) a note."""
    if paths and office_key is None:
        notes.append(f"{len(paths)} tombstone(s) of back-office deletions found but not checked: give the office's "
                     "public key (--office-key office.pub) to take them into account")
        return []
    out = []
    for path in paths:
        try:
            out.append(read_tombstone(path.read_bytes(), office_key, str(path)))
        except OSError as exc:
            problems.append(Problem("tombstone", f"{path}: cannot read ({exc.strerror})"))
        except TombstoneError as exc:
            problems.append(Problem("tombstone", str(exc)))
    return out


def find_receipts(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Receipt files (``*.receipt.json``: the store's ``.receipts/`` and the spool's) under ``paths``."""
    found = []
    for raw in paths:
        path = Path(raw)
        candidates = path.rglob("*" + RECEIPT_SUFFIX) if path.is_dir() else [path]
        found += [p for p in candidates if p.is_file() and p.name.endswith(RECEIPT_SUFFIX)]
    return sorted(set(found))


def _per_device(values: dict, by_device: Mapping[str, list], option: str) -> dict:
    """Resolve values given without a device (key None) to the one device in the set."""
    if None in values:
        if len(by_device) != 1:
            raise VerifyInputError(f"{option} without a device id needs a set of exactly one device; this one holds "
                                   f"{len(by_device)}: write DEVICE=… ({', '.join(sorted(by_device)) or 'none'})")
        values[next(iter(by_device))] = values.pop(None)
    return values


def _check_files(stem: str, manifests: list[Path], ciphertexts: list[Path],
                 devices: Mapping[str, DevicePublicKey], notes: list[str]) -> SegmentResult:
    problems: list[str] = []
    man_path, data = _one_copy(stem, manifests, problems, notes, "manifest")
    age_path, age_hash = _one_copy(stem, ciphertexts, problems, notes, "ciphertext")
    manifest, signature_ok = None, False
    if not manifests:
        problems.append("manifest missing (only the .age file was found)")
    elif man_path is not None:
        try:
            manifest = Manifest.parse(data)
        except ManifestError as exc:
            problems.append(str(exc))
    if manifest is not None:
        key = devices.get(manifest.signing_key_id)
        if key is None:
            problems.append(f"signed with key {manifest.signing_key_id}, which is not among the enrolled devices")
        else:
            try:
                verify_manifest(data, key)
                signature_ok = True
            except ManifestError as exc:
                problems.append(str(exc))
        if manifest.stem != stem:
            problems.append(f"file name does not match the manifest, which is for {manifest.stem} "
                            "(renamed or swapped files)")
    if not ciphertexts:
        problems.append("ciphertext (.age file) missing")
    elif age_path is not None and manifest is not None and age_hash != manifest.ciphertext_sha256:
        problems.append("ciphertext SHA-256 does not match the manifest (altered, truncated or swapped .age file)")
    return SegmentResult(stem, man_path, age_path, manifest, signature_ok, tuple(problems), age_hash)


def _one_copy(stem, paths, problems, notes, what) -> tuple[Path | None, bytes | str | None]:
    """Read a manifest (bytes) or hash a ciphertext (hex); several identical copies count as one."""
    values = []
    for p in paths:
        try:
            if what == "manifest":
                values.append(p.read_bytes())
            else:
                with open(p, "rb") as fh:
                    values.append(hashlib.file_digest(fh, "sha256").hexdigest())
        except OSError as exc:
            problems.append(f"cannot read {p} ({exc.strerror})")
            return None, None
    if not paths:
        return None, None
    if any(v != values[0] for v in values[1:]):
        problems.append(f"{len(paths)} different {what} files with this name: {', '.join(map(str, paths))}")
    elif len(paths) > 1:
        notes.append(f"{stem}: {len(paths)} identical copies of the {what}; checked once")
    return paths[0], values[0]


def _mark_swaps(results: list[SegmentResult]) -> list[SegmentResult]:
    """Name the segment a mismatching ciphertext really belongs to, which tells a swap from damage."""
    owner = {r.manifest.ciphertext_sha256: r.stem for r in results if r.signature_ok}
    out = []
    for r in results:
        actual = r.ciphertext_file_sha256
        if r.manifest is not None and actual is not None and actual != r.manifest.ciphertext_sha256 \
                and owner.get(actual, r.stem) != r.stem:
            extra = f"the .age file is the ciphertext of segment {owner[actual]} (segments swapped)"
            r = dataclasses.replace(r, problems=r.problems + (extra,))
        out.append(r)
    return out


def _check_chain(device: str, manifests: list[Manifest], problems: list[Problem], notes: list[str],
                 first_seq: int | None = None, deleted: Mapping[int, dict] | None = None) -> None:
    """Contiguous seq and unbroken prev-hash links for one device, from ``first_seq`` (default 1) on.

    ``deleted``: segments of verified tombstones by seq; they count as present when the next manifest's
    previous-manifest hash is theirs."""
    deleted = deleted or {}
    by_seq: dict[int, list[Manifest]] = defaultdict(list)
    for m in manifests:
        by_seq[m.seq].append(m)
    for seq, ms in sorted(by_seq.items()):
        if len({m.sha256 for m in ms}) > 1:
            problems.append(Problem("fork", f"device {device}: seq {seq} appears in {len(ms)} different signed "
                                    "manifests (the chain was restarted or forked)", device,
                                    _common_incident(ms), ms[0].stem))
    ordered = [ms[0] for _, ms in sorted(by_seq.items())]
    first = ordered[0]
    if first.seq - 1 in deleted:  # the oldest segments were deleted by the back office
        if first.prev_manifest_sha256 != deleted[first.seq - 1]["manifest_sha256"]:
            problems.append(Problem("chain", f"{first.stem}: previous-manifest hash does not match the tombstone's "
                                    f"seq {first.seq - 1} (the tombstone names another segment)", device,
                                    first.incident_id, first.stem))
        oldest = first.seq
        while oldest - 1 in deleted:
            oldest -= 1
        first = dataclasses.replace(first, seq=oldest)  # for the start check only
    if first_seq is None and first.seq > 1:
        problems.append(Problem("start", f"device {device}: this set starts at seq {first.seq}; seq "
                                f"{_span(1, first.seq - 1)} are not included (deleted, or uploaded and purged from "
                                f"a spool); if it is meant to start there, say so with --first-seq {first.seq}",
                                device, None, first.stem))
    elif first_seq is not None and first.seq > first_seq:
        problems.append(Problem("start", f"device {device}: seq {_span(first_seq, first.seq - 1)} missing before "
                                f"the oldest segment held ({first.stem}); the set was to start at seq {first_seq}",
                                device, None, first.stem))
    elif first_seq is not None and first.seq > 1:
        notes.append(f"device {device}: seq {_span(1, first.seq - 1)} are not included and cannot be checked "
                     f"(--first-seq {first_seq})")
    for m in ordered:
        if (m.seq == 1) != (m.prev_manifest_sha256 is None):
            problems.append(Problem("chain", f"{m.stem}: seq {m.seq} with "
                                    f"{'no' if m.prev_manifest_sha256 is None else 'a'} previous-manifest hash "
                                    "(chain state lost or forged)", device, m.incident_id, m.stem))
    for prev, m in zip(ordered, ordered[1:]):
        same_incident = m.incident_id if m.incident_id == prev.incident_id else None
        if m.seq != prev.seq + 1 and all(q in deleted for q in range(prev.seq + 1, m.seq)):
            if m.prev_manifest_sha256 != deleted[m.seq - 1]["manifest_sha256"]:
                problems.append(Problem("chain", f"{m.stem}: previous-manifest hash does not match the tombstone's "
                                        f"seq {m.seq - 1} (the tombstone names another segment)", device,
                                        same_incident, m.stem))
        elif m.seq != prev.seq + 1:
            missing = f"seq {prev.seq + 1}" if m.seq == prev.seq + 2 else f"seq {prev.seq + 1}..{m.seq - 1}"
            problems.append(Problem("gap", f"device {device}: {missing} missing or failed verification "
                                    f"(gap between {prev.stem} and {m.stem})", device, same_incident, m.stem))
        elif m.prev_manifest_sha256 != prev.sha256:
            problems.append(Problem("chain", f"{m.stem}: previous-manifest hash does not match {prev.stem} "
                                    "(chain broken: a segment was replaced)", device, same_incident, m.stem))


def _check_head(device: str, head: ChainHead, manifests: list[Manifest], problems: list[Problem],
                deleted: Mapping[int, dict] | None = None) -> None:
    """What the device published as its newest seal must be here: report everything missing after the newest."""
    newest = max(manifests, key=lambda m: m.seq, default=None)
    published = f"the device published chain head seq {head.seq}"
    if deleted and newest is not None and all(q in deleted for q in range(newest.seq + 1, head.seq + 1)):
        return  # the newest segments were deleted by the back office, as their tombstones say
    if newest is None:
        problems.append(Problem("end", f"device {device}: no verified segment in the set, but {published}", device))
        return
    if newest.seq < head.seq:
        problems.append(Problem("end", f"device {device}: seq {_span(newest.seq + 1, head.seq)} missing after the "
                                f"newest segment held ({newest.stem}); {published}", device, None, newest.stem))
        return
    at_head = [m for m in manifests if m.seq == head.seq]
    if head.manifest_sha256 and at_head and all(m.sha256 != head.manifest_sha256 for m in at_head):
        problems.append(Problem("end", f"device {device}: the manifest of seq {head.seq} here is not the one the "
                                f"device published ({head.manifest_sha256[:16]}…): the chain was replaced", device,
                                at_head[0].incident_id, at_head[0].stem))


def _check_receipts(receipts: list[Path], trusted: list[Manifest], problems: list[Problem], receipt_key,
                    deleted: Mapping[str, Mapping[int, dict]] | None = None) -> None:
    """Every receipt names a segment the back office stored: it must be in the set, with that manifest."""
    # The receipt format belongs to the back office, which lives in comms.

    held = {m.stem: m for m in trusted}
    for path in receipts:
        try:
            data = path.read_bytes()
            doc = json.loads(data)
            if isinstance(doc, dict) and "receipt_b64" in doc:  # the spool's record wraps the receipt
                data = base64.b64decode(doc["receipt_b64"], validate=True)
            receipt = verify_receipt(data, receipt_key) if receipt_key else parse_receipt(data)[0]
        except OSError as exc:
            problems.append(Problem("receipt", f"{path}: cannot read ({exc.strerror})"))
            continue
        except (ValueError, binascii.Error, ReceiptError) as exc:
            problems.append(Problem("receipt", f"{path}: not a valid receipt ({exc})"))
            continue
        m = held.get(receipt.stem)
        stored = f"the store's receipt says it was stored ({receipt.received_time}, receiver {receipt.receiver_id})"
        gone = (deleted or {}).get(receipt.device_id, {}).get(receipt.seq)
        if m is None and gone is not None and (gone["manifest_sha256"], gone["ciphertext_sha256"]) == (
                receipt.manifest_sha256, receipt.ciphertext_sha256):
            continue  # stored, then deleted by the back office: its tombstone is reported
        if m is None:
            problems.append(Problem("receipt", f"{receipt.stem}: {stored}, but it is missing or failed verification",
                                    receipt.device_id, receipt.incident_id, receipt.stem))
        elif m.sha256 != receipt.manifest_sha256 or m.ciphertext_sha256 != receipt.ciphertext_sha256:
            problems.append(Problem("receipt", f"{receipt.stem}: {stored} with manifest "
                                    f"{receipt.manifest_sha256[:16]}…, but the set holds another one", m.device_id,
                                    m.incident_id, m.stem))


def _span(a: int, b: int) -> str:
    return f"{a}" if a == b else f"{a}..{b}"


def _check_incidents(device: str, manifests: list[Manifest], problems: list[Problem]) -> None:
    """Per incident: indices 0..final without holes or repeats, one final segment, seq order = index order."""
    incidents: dict[str, list[Manifest]] = defaultdict(list)
    for m in manifests:
        incidents[m.incident_id].append(m)
    for incident, ms in sorted(incidents.items()):
        where = f"device {device}, incident {incident}"

        def add(kind, text, stem=None):
            problems.append(Problem(kind, f"{where}: {text}", device, incident, stem))

        by_index: dict[int, list[Manifest]] = defaultdict(list)
        for m in ms:
            by_index[m.segment_index].append(m)
        for index, group in sorted(by_index.items()):
            if len({m.sha256 for m in group}) > 1:
                add("duplicate", f"segment index {index} appears {len(group)} times "
                    f"({', '.join(m.stem for m in group)})", group[0].stem)
        finals = sorted({m.segment_index for m in ms if m.final})
        last = max(by_index)
        missing = [i for i in range(last + 1) if i not in by_index]
        if missing:
            add("incomplete", f"segment index {_ranges(missing)} missing or failed verification")
        if not finals:
            add("incomplete", f"no final segment after index {last} (last segment missing, or still recording)")
        elif len(finals) > 1 or finals[0] != last:
            add("incomplete", f"segments after the final one (final at index {finals[0]}, last index {last})")
        ordered = sorted(ms, key=lambda m: m.segment_index)
        for a, b in zip(ordered, ordered[1:]):
            if a.segment_index != b.segment_index and b.seq <= a.seq:
                add("order", f"segment {b.segment_index} ({b.stem}) was sealed before segment {a.segment_index} "
                    f"({a.stem}); the order does not match the chain", b.stem)


def _cut(marker: Manifest) -> Cut:
    lost = parse_time(marker.sealed_time) - parse_time(marker.last_frame_time)
    return Cut(marker.device_id, marker.incident_id, marker.stem, marker.reason, marker.sealed_time,
               marker.last_frame_time, round(lost, 3) if lost >= 0 else None, marker.clock_sync)


def parse_time(text: str) -> float:
    """A manifest's ISO 8601 UTC time (``2025-06-01T09:30:00.125Z``) as UNIX time."""
    return parse_iso_utc(text)


def _common_incident(ms: list[Manifest]) -> str | None:
    ids = {m.incident_id for m in ms}
    return ids.pop() if len(ids) == 1 else None


def _ranges(numbers: list[int]) -> str:
    parts, start = [], numbers[0]
    for a, b in zip(numbers, numbers[1:] + [None]):
        if b != a + 1:
            parts.append(str(start) if start == a else f"{start}..{a}")
            start = b
    return ", ".join(parts)


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)
