"""A court package: one incident as a ZIP for the public prosecutor or the Bußgeldstelle, made as a stream.

:func:`court_package` yields the ZIP's bytes as they are made (``zipfile`` on a stream that cannot seek),
so the web app can send it as the response and the command can write it to the file asked for; nothing
else is written, and no plaintext touches disk. Inside, under one folder ``<device>-<incident>/``:

* ``incident.mp4`` -- the incident as one fragmented MP4 with picture and sound, the device's own H.264
  and AAC bytes at their signed times (:class:`evidence.export.Remuxer`), decrypted segment by segment by
  the key custodian for the export's ticket;
* ``originals/`` -- the sealed segments exactly as stored (``.age`` and ``.manifest.json``) and, in
  ``originals/receipts/``, the back office's signed receipts;
* ``keys/devices/<device>.pub``, ``keys/office.pub``, ``keys/receipt.pub`` (when configured);
* ``chain-of-custody.json`` and ``chain-of-custody.pdf`` (German by default; :mod:`.custody_report`,
  :mod:`.report_pdf`) and ``README.txt``: how an expert re-verifies it (:mod:`.readme`);
* ``SHA256SUMS`` over every other file.

Before anything is decrypted, the originals are verified as ``bodycam verify`` does (the same function,
:func:`evidence.verify.verify_paths`), and each ``.age`` file is hashed again as it is copied. The MP4
joins the segments that verified; what did not is named in the report. When the package is complete, a
``package_exported`` line (its SHA-256 and size) goes into the office audit log.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import zipfile
from pathlib import Path
from typing import Iterator, Mapping

from base.errors import BodycamError
from base.utctime import iso_utc
from evidence.export import ExportError, Remuxer, check_joinable, timeline
from evidence.keys import DevicePublicKey, load_receipt_public_key
from evidence.verify import verify_paths

from ..catalog import office as events
from ..catalog.custody_record import incident_record
from ..store import RECEIPT_SUFFIX, RECEIPTS_DIR, incident_dir_name
from . import readme, report_pdf
from .custody_report import audit_lines, build_report, segment_rows

logger = logging.getLogger(__name__)

LANGS = ("de", "en")
MP4_NAME = "incident.mp4"
REPORT_JSON = "chain-of-custody.json"
REPORT_PDF = "chain-of-custody.pdf"
_COPY = 1024 * 1024


class PackageError(BodycamError):
    """A court package cannot be made (nothing verifies, the files changed, the formats cannot be joined)."""


def court_package(office, access, ticket: bytes, client, *, devices: Mapping[str, DevicePublicKey],
                  receipt_pub: str | Path | None = None, lang: str = "de") -> Iterator[bytes]:
    """The ZIP's bytes for ``access`` (an export :class:`~backoffice.catalog.models.Access`), with ``ticket``
    (:func:`.ticket.issue_ticket` for it) and ``client`` (a :class:`.client.CustodianClient`)."""
    if lang not in LANGS:
        raise PackageError(f"language {lang!r} is not one of {', '.join(LANGS)}")
    if access.kind != "export":
        raise PackageError(f"access {access.pk} is a {access.kind} access; a court package needs an export access")
    record = incident_record(access.incident)
    site, device, incident_id = record["site"], record["device_id"], record["incident_id"]
    incident = f"{device}/{incident_id}"
    store = Path(office.store_dir)
    folder = store / record["store_path"]
    receipts_dir = store / site / device / RECEIPTS_DIR
    catalog_rows = record["segments"]
    if not catalog_rows:
        raise PackageError(f"incident {incident} has no segments in the catalog")
    receipt_key = load_receipt_public_key(receipt_pub) if receipt_pub else None

    originals = [p for row in catalog_rows for p in (folder / f"{row['stem']}.manifest.json",
                                                     folder / f"{row['stem']}.age",
                                                     receipts_dir / f"{row['stem']}{RECEIPT_SUFFIX}") if p.is_file()]
    first_seq = min(row["seq"] for row in catalog_rows)
    report = verify_paths(originals, devices, first_seqs={device: first_seq}, receipt_key=receipt_key)
    results = {r.stem: r for r in report.segments}
    manifests = {r.stem: r.manifest for r in report.segments if r.manifest is not None}
    usable = sorted((r.manifest for r in report.segments if r.ok and not r.manifest.is_end_marker
                     and (r.manifest.device_id, r.manifest.incident_id) == (device, incident_id)),
                    key=lambda m: (m.segment_index, m.seq))
    if not usable:
        raise PackageError(f"no segment of incident {incident} verifies; there is nothing to put into the MP4: "
                           + "; ".join(report.lines())[:500])
    try:
        check_joinable(usable)
    except ExportError as exc:
        raise PackageError(str(exc)) from None
    placements = {p.stem: p for p in timeline(usable)}
    now = time.time()
    top = f"{device}-{incident_dir_name(incident_id)}/"
    writer = _ZipWriter(top, now)

    # -- the sealed originals, the receipts and the public keys ---------------------------------------------
    for row in catalog_rows:
        stem = row["stem"]
        for suffix in (".manifest.json", ".age"):
            path = folder / f"{stem}{suffix}"
            if path.is_file():
                # as verified a moment ago (which, for a damaged one, is not the manifest's hash)
                expected = results[stem].ciphertext_file_sha256 if suffix == ".age" and stem in results else None
                writer.copy(f"originals/{stem}{suffix}", path, expected)
                yield writer.take()
        receipt = receipts_dir / f"{stem}{RECEIPT_SUFFIX}"
        if receipt.is_file():
            writer.copy(f"originals/receipts/{stem}{RECEIPT_SUFFIX}", receipt)
    signing_keys = sorted({m.signing_key_id for m in manifests.values()})
    device_keys = [devices[k] for k in signing_keys if k in devices]
    for key in device_keys:
        writer.add(f"keys/devices/{key.device_id or key.key_id}.pub", f"{key.to_line()}\n".encode("ascii"))
    office_public = office.signer.public
    writer.add("keys/office.pub", f"{office_public.to_line()}\n".encode("ascii"))
    if receipt_key is not None:
        writer.add("keys/receipt.pub", f"{receipt_key.to_line()}\n".encode("ascii"))
    yield writer.take()

    # -- the MP4, decrypted segment by segment by the custodian -----------------------------------------------
    plaintext_sha256: dict[str, str] = {}
    with writer.entry(MP4_NAME, compress=False) as mp4:
        with Remuxer(mp4, fragmented=True) as remuxer:
            for m in usable:
                digest = hashlib.sha256()
                with client.open_segment(ticket, m.stem) as stream:
                    chunks = []
                    for chunk in stream:
                        digest.update(chunk)
                        chunks.append(chunk)
                plaintext = b"".join(chunks)
                del chunks
                plaintext_sha256[m.stem] = digest.hexdigest()
                remuxer.add(m, placements[m.stem].offset_us, plaintext)
                del plaintext
                yield writer.take()
    mp4_info = {"name": MP4_NAME, "sha256": writer.files[-1]["sha256"], "bytes": writer.files[-1]["bytes"],
                "duration_s": round(max(p.end_us for p in placements.values()) / 1e6, 6), "fragmented": True,
                "segments": [m.stem for m in usable]}
    yield writer.take()

    # -- the report, its PDF, the README and the checksums --------------------------------------------------
    receipts = {}
    for path in originals:
        if path.name.endswith(RECEIPT_SUFFIX):
            try:
                receipts[path.name[:-len(RECEIPT_SUFFIX)]] = json.loads(path.read_bytes())
            except (OSError, ValueError):
                continue
    problems = report.problems_for(device, incident_id)
    command = readme.verify_command(device_keys, first_seq, receipt_key is not None)
    verification = {
        "ok": not problems and all(results[row["stem"]].ok for row in catalog_rows if row["stem"] in results),
        "problems": problems, "notes": list(report.notes),
        "cut": (report.cut_of(device, incident_id).to_dict() if report.cut_of(device, incident_id) else None),
        "checked_at": iso_utc(now), "command": command,
        "device_keys": [{"device_id": k.device_id, "key_id": k.key_id, "line": k.to_line()} for k in device_keys],
        "office_key": {"key_id": office_public.key_id, "line": office_public.to_line()},
        "receipt_key": None if receipt_key is None else {"key_id": receipt_key.key_id, "line": receipt_key.to_line()},
    }
    audit, head = audit_lines(office.log.path, incident, device, incident_id, [r["stem"] for r in catalog_rows])
    export = {"access": access.pk, "by": access.user.username, "purpose": access.purpose,
              "access_at": access.at.isoformat(), "via": access.via}
    doc = build_report(record=record, export=export,
                       segments=segment_rows(manifests, results, catalog_rows, receipts, plaintext_sha256, placements),
                       verification=verification, mp4=mp4_info, audit=audit, audit_head=head,
                       files=list(writer.files), created=now, lang=lang)
    writer.add(REPORT_JSON, (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    writer.add(REPORT_PDF, report_pdf.render(doc, lang), compress=False)
    writer.add("README.txt", readme.text(doc, lang).encode("utf-8"))
    writer.add("SHA256SUMS", "".join(f"{f['sha256']}  {f['name']}\n" for f in writer.files).encode("ascii"))
    yield writer.take()
    tail = writer.finish()
    office.record(events.PACKAGE_EXPORTED, access=access.pk, incident=incident, by=access.user.username,
                  purpose=access.purpose, segments=len(usable), mp4_sha256=mp4_info["sha256"],
                  zip_sha256=writer.sha256(), bytes=writer.size)
    logger.info("court package of %s for access %d: %d bytes, %d segment(s)", incident, access.pk, writer.size,
                len(usable))
    yield tail


class _Pipe:
    """What the ZIP writes, until it is taken; no ``tell``/``seek``, so ``zipfile`` streams (data descriptors)."""

    def __init__(self):
        self._chunks: list[bytes] = []

    def write(self, data) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


class _ZipWriter:
    """The package's ZIP: entries under one folder, each file's SHA-256 and size kept for the report."""

    def __init__(self, top: str, now: float):
        self._pipe = _Pipe()
        self._zip = zipfile.ZipFile(self._pipe, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True)
        self._top = top
        self._date = time.gmtime(now)[:6]
        self._digest = hashlib.sha256()
        self.size = 0
        #: name (inside the folder), sha256, bytes of every file added so far.
        self.files: list[dict] = []

    def _info(self, name: str, compress: bool) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(self._top + name, self._date)
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        info.external_attr = 0o644 << 16
        return info

    def add(self, name: str, data: bytes, *, compress: bool = True) -> None:
        with self._zip.open(self._info(name, compress), "w") as fh:
            fh.write(data)
        self.files.append({"name": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)})

    def copy(self, name: str, path: Path, expected_sha256: str | None = None) -> None:
        """Copy a stored file; ``expected_sha256``: it must still hash to this, as verified (checked as it is copied)."""
        digest, size = hashlib.sha256(), 0
        try:
            with open(path, "rb") as src, self._zip.open(self._info(name, path.suffix != ".age"), "w") as dst:
                while block := src.read(_COPY):
                    digest.update(block)
                    size += len(block)
                    dst.write(block)
        except OSError as exc:
            raise PackageError(f"cannot read {path} ({exc.strerror})") from None
        if expected_sha256 is not None and digest.hexdigest() != expected_sha256:
            raise PackageError(f"{path.name} changed while the package was made (its SHA-256 is no longer the one "
                               "verified); start the export again")
        self.files.append({"name": name, "sha256": digest.hexdigest(), "bytes": size})

    def entry(self, name: str, *, compress: bool = True) -> _Entry:
        """A file written piece by piece (the MP4); its hash and size are recorded when it is closed."""
        return _Entry(self, name, self._zip.open(self._info(name, compress), "w", force_zip64=True))

    def take(self) -> bytes:
        out = self._pipe.take()
        self._digest.update(out)
        self.size += len(out)
        return out

    def finish(self) -> bytes:
        self._zip.close()
        return self.take()

    def sha256(self) -> str:
        return self._digest.hexdigest()


class _Entry:
    """A ZIP entry being written, for PyAV: ``write`` only (it must not seek)."""

    def __init__(self, owner: _ZipWriter, name: str, fh):
        self._owner, self._name, self._fh = owner, name, fh
        self._digest, self._size = hashlib.sha256(), 0

    def write(self, data) -> int:
        self._digest.update(data)
        self._size += len(data)
        return self._fh.write(data)

    def __enter__(self) -> _Entry:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self._fh.close()
        if exc_type is None:
            self._owner.files.append({"name": self._name, "sha256": self._digest.hexdigest(), "bytes": self._size})
