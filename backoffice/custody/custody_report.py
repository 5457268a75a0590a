"""The chain-of-custody report as data (``chain-of-custody.json`` in a court package; the PDF is drawn from it).

It gathers, for one incident: every segment's manifest facts, hashes and signatures with its receipt and
the catalog's verification; what ``bodycam verify`` found for the package's originals and with which keys;
the catalog's holds, decisions and accesses; and every line of the office audit log that concerns the
incident (each with its hash and signature, so it can be checked against the municipality's whole log).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Iterable

from base import __version__
from base.utctime import iso_utc

logger = logging.getLogger(__name__)

FORMAT = "bodycam-custody-report/1"


def audit_lines(log_path: Path, incident: str, device_id: str, incident_id: str, stems: Iterable[str]
                ) -> tuple[list[dict], dict | None]:
    """The office audit log's lines about the incident (in order), and the log's head as read (seq, hash).

    A line concerns the incident when it names it (``incident``: ``DEVICE/INCIDENT``), its device and id
    (``segment_cataloged``), or one of its segments (``stem``). The log is read line by line; a line that
    does not parse is skipped here (``bodycam-office audit verify`` is the authority on the log as a whole).
    """
    stems = set(stems)
    found, head = [], None
    try:
        with open(log_path, "rb") as fh:
            for raw in fh:
                try:
                    doc = json.loads(raw)
                except (UnicodeDecodeError, json.JSONDecodeError):
                    continue
                if not isinstance(doc, dict):
                    continue
                head = {"seq": doc.get("seq"), "hash": doc.get("hash")}
                fields = doc.get("fields") if isinstance(doc.get("fields"), dict) else {}
                if (fields.get("incident") == incident or fields.get("stem") in stems
                        or (fields.get("device") == device_id and fields.get("incident_id") == incident_id)):
                    found.append(doc)
    except FileNotFoundError:
        logger.warning("the office audit log %s does not exist; the report names no audit lines", log_path)
    return found, head


def build_report(*, record: dict, export: dict, segments: list[dict], verification: dict, mp4: dict,
                 audit: list[dict], audit_head: dict | None, files: list[dict], created: float, lang: str) -> dict:
    """The report document (JSON values only). ``record``: :func:`backoffice.catalog.custody_record.incident_record`."""
    return {
        "format": FORMAT,
        "created": iso_utc(created),
        "software_version": __version__,
        "language": lang,
        "incident": {k: v for k, v in record.items() if k not in ("segments", "holds", "decisions", "accesses",
                                                                  "tombstone")},
        "export": export,
        "segments": segments,
        "verification": verification,
        "mp4": mp4,
        "holds": record["holds"],
        "decisions": record["decisions"],
        "accesses": record["accesses"],
        "tombstone": record["tombstone"],
        "audit": {"log_head": audit_head, "lines": audit},
        "files": files,
    }


def segment_rows(manifests_by_stem: dict, results_by_stem: dict, catalog_rows: list[dict], receipts: dict,
                 plaintext: dict, placements: dict) -> list[dict]:
    """One row per cataloged segment, in chain order: what the device signed, what was checked, where it plays."""
    rows = []
    for cat in catalog_rows:
        stem = cat["stem"]
        m = manifests_by_stem.get(stem)
        result = results_by_stem.get(stem)
        row = {"stem": stem, "seq": cat["seq"], "segment_index": cat["segment_index"], "final": cat["final"],
               "kind": "incident_end" if cat["end_marker"] else "segment",
               "catalog_verification": cat["verification"],
               "verified": bool(result and result.ok), "problems": list(result.problems) if result else
               ["not in the store"]}
        if m is not None:
            row.update(format=m.format, start_time=m.start_time, end_time=m.end_time, sealed_time=m.sealed_time,
                       clock_sync=m.clock_sync, frame_count=m.frame_count, pre_event_frames=m.pre_event_frames,
                       dropped_frames=m.dropped_frames, has_sound=m.has_audio, plaintext_bytes=m.plaintext_bytes,
                       ciphertext_bytes=m.ciphertext_bytes, ciphertext_sha256=m.ciphertext_sha256,
                       manifest_sha256=m.sha256, prev_manifest_sha256=m.prev_manifest_sha256,
                       signing_key_id=m.signing_key_id, signature=m.signature,
                       recipient_key_ids=list(m.recipient_key_ids), software_version=m.software_version)
            if m.is_end_marker:
                row.update(reason=m.reason, last_frame_time=m.last_frame_time)
        if stem in receipts:
            row["receipt"] = receipts[stem]
        if stem in plaintext:
            row["plaintext_sha256"] = plaintext[stem]
        if stem in placements:
            p = placements[stem]
            row.update(included_in_mp4=True, mp4_offset_s=round(p.offset_us / 1e6, 6), mp4_end_s=round(p.end_us / 1e6, 6))
        else:
            row["included_in_mp4"] = False
        rows.append(row)
    return rows
