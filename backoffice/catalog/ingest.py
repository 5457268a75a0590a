"""Bring the catalog in line with the store: every stored segment gets its catalog row (reconciliation).

Idempotent: a segment already cataloged is skipped, so running it at every start (or from cron) repairs a
crash between the store's commit and the catalog's row. A manifest that does not parse is reported and
skipped, changing nothing; its signature is checked when the device's key is enrolled.

Officer check-out: a manifest's ``officer`` (the pseudonymous id of the officer the device was assigned
to) attributes its incident to that officer, whose back-office user name is that id, so they see their
own recordings (``models.may_see``). Only a verified manifest attributes: the attribution grants access,
and an unverified one (device key not enrolled) or a failed one could be anybody's word. An incident
already attributed keeps its officer; a verified manifest naming another is logged (``officer_mismatch``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from django.db import transaction

from base.utctime import parse_iso_utc
from evidence.keys import DevicePublicKey
from evidence.seal import Manifest, ManifestError, verify_manifest

from . import office as events
from . import segment_rows
from .models import Device, Incident, Segment, Site, join_deletion

logger = logging.getLogger(__name__)

MANIFEST_SUFFIX = ".manifest.json"


@dataclass
class IngestReport:
    added: int = 0
    known: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"catalog: {self.added} segment(s) added, {self.known} already known, "
                f"{len(self.problems)} problem(s)")


def _when(text: str) -> datetime:
    return datetime.fromtimestamp(parse_iso_utc(text), timezone.utc)


def reconcile(office, devices: dict[str, DevicePublicKey] | None = None, batch: int = 500) -> IngestReport:
    """Scan ``<store>/<site>/<device>/<incident>/*.manifest.json`` and catalog what is missing.

    ``devices``: enrolled keys by key id (:func:`evidence.keys.load_device_public_keys`). Recorded ``batch``
    segments to a transaction: a store that lost its catalog (restored from a backup) holds millions."""
    report = IngestReport()
    store = Path(office.store_dir)
    paths = sorted(store.glob(f"*/*/*/*{MANIFEST_SUFFIX}"))
    known = cataloged([path.name.removesuffix(MANIFEST_SUFFIX) for path in paths])
    missing: list[tuple[Manifest, Path]] = []
    for path in paths:
        if path.name.removesuffix(MANIFEST_SUFFIX) in known:
            report.known += 1
            continue
        try:
            manifest = Manifest.parse(path.read_bytes())
        except (OSError, ManifestError) as exc:
            report.problems.append(f"{path}: {exc}")
            logger.warning("catalog: %s skipped: %s", path, exc)
            continue
        missing.append((manifest, path.parent.relative_to(store)))
    for i in range(0, len(missing), batch):
        report.added += sum(record_segments(office, missing[i:i + batch], devices))
    return report


def _new_incident(manifest: Manifest, incident_dir: Path, start: datetime, end: datetime) -> Incident:
    """The incident's first segment to arrive (its site and device may be new too)."""
    site, _ = Site.objects.get_or_create(code=manifest.site)
    device, _ = Device.objects.get_or_create(device_id=manifest.device_id, defaults={"site": site})
    incident, _ = Incident.objects.select_for_update().get_or_create(
        device=device, incident_id=manifest.incident_id,
        defaults={"site": site, "start": start, "end": end, "store_path": str(incident_dir), "expires_at": end})
    return incident


def cataloged(stems: list[str], batch: int = 500) -> set[str]:
    """Which of ``stems`` the catalog holds: asked in batches, since a year's catalog holds ten million
    (loading them all made each receiver start take a minute and a gigabyte)."""
    found: set[str] = set()
    for i in range(0, len(stems), batch):
        found.update(Segment.objects.filter(stem__in=stems[i:i + batch]).values_list("stem", flat=True))
    return found


def _verification(manifest: Manifest, devices: dict[str, DevicePublicKey] | None, checked: bool) -> str:
    key = (devices or {}).get(manifest.signing_key_id)
    if key is None:
        return Segment.UNVERIFIED
    if checked:
        return Segment.VERIFIED
    try:
        verify_manifest(manifest.raw, key)
    except ManifestError:
        return Segment.FAILED
    return Segment.VERIFIED


def record_segment(office, manifest: Manifest, incident_dir: Path, devices: dict[str, DevicePublicKey] | None) -> bool:
    """Catalog one durably stored segment; True if it was new, False if the catalog held it already."""
    return record_segments(office, [(manifest, incident_dir)], devices)[0]


def record_segments(office, stored: list[tuple[Manifest, Path]],
                    devices: dict[str, DevicePublicKey] | None, *, signatures_checked: bool = False) -> list[bool]:
    """Catalog durably stored segments (manifest, incident folder relative to the store) in one transaction and
    one audit write; for each, True if it was new, False if the catalog held it already (or it came twice).

    The receiver calls this before their receipts go out, a few segments at a time: what a segment costs is
    mostly the transaction, the round trips and the audit log's fsync, and a batch pays them once (measured
    in docs/BENCHMARKS.md). All or nothing: on an error nothing is recorded.

    ``signatures_checked``: the caller verified each manifest's signature with its key in ``devices`` and
    refused those that failed (the receiver does, before it accepts an offer), so it is not verified twice.
    """
    if not stored:
        return []
    checked = [(manifest, incident_dir, _verification(manifest, devices, signatures_checked),
                _when(manifest.start_time), _when(manifest.end_time)) for manifest, incident_dir in stored]
    lines: list[tuple[str, dict]] = []
    late: list[tuple[str, Incident]] = []
    mismatched: list[tuple[Manifest, Incident, str]] = []
    offered_stems: set[str] = set()
    with transaction.atomic():
        incidents = segment_rows.locked_incidents([(m.device_id, m.incident_id) for m, *_ in checked])
        # The incidents' rows stay locked to the commit, so two receivers storing segments of one incident add
        # up its frames one after the other (SQLite has one writer anyway).
        offered: list[tuple[Segment, Manifest, str]] = []
        for manifest, incident_dir, verification, start, end in checked:
            if manifest.stem in offered_stems:
                continue  # the same segment twice in one batch
            offered_stems.add(manifest.stem)
            key = (manifest.device_id, manifest.incident_id)
            if key not in incidents:
                incidents[key] = _new_incident(manifest, incident_dir, start, end)
            offered.append((Segment(
                stem=manifest.stem, incident=incidents[key], seq=manifest.seq, segment_index=manifest.segment_index,
                final=manifest.final, end_marker=manifest.is_end_marker, start=start, end=end,
                frame_count=manifest.frame_count, pre_event_frames=manifest.pre_event_frames,
                ciphertext_sha256=manifest.ciphertext_sha256, ciphertext_bytes=manifest.ciphertext_bytes,
                manifest_sha256=manifest.sha256, verification=verification), manifest, verification))
        new_stems = segment_rows.insert_new([segment for segment, *_ in offered])
        added = [entry for entry in offered if entry[0].stem in new_stems]
        grown: dict[int, Incident] = {}
        for segment, manifest, verification in added:
            incident = grown[segment.incident.pk] = segment.incident
            incident.start, incident.end = min(incident.start, segment.start), max(incident.end, segment.end)
            incident.frame_count += segment.frame_count
            incident.pre_event_frames += segment.pre_event_frames
            if incident.state != Incident.ACTIVE:  # deleted already: the segment goes at the next retention run
                join_deletion(incident, segment)
                late.append((manifest.stem, incident))
                lines.append((events.SEGMENT_AFTER_DELETION, dict(incident=str(incident), stem=manifest.stem,
                                                                  ciphertext_sha256=manifest.ciphertext_sha256)))
            lines.append((events.SEGMENT_CATALOGED, dict(
                site=manifest.site, device=manifest.device_id, incident_id=manifest.incident_id, stem=manifest.stem,
                ciphertext_sha256=manifest.ciphertext_sha256, verification=verification, officer=manifest.officer)))
            if manifest.officer and verification == Segment.VERIFIED:
                if not incident.officer:
                    incident.officer = manifest.officer
                    lines.append((events.INCIDENT_ATTRIBUTED, dict(incident=str(incident), officer=manifest.officer,
                                                                   stem=manifest.stem)))
                elif incident.officer != manifest.officer:
                    mismatched.append((manifest, incident, incident.officer))
                    lines.append((events.OFFICER_MISMATCH, dict(incident=str(incident), officer=incident.officer,
                                                                manifest_officer=manifest.officer, stem=manifest.stem)))
        for incident in grown.values():
            incident.recompute_expiry()
            segment_rows.save_grown(incident)
            segment_rows.cover(incident)
    for stem, incident in late:
        logger.warning("catalog: segment %s arrived after its incident %s was deleted; the next retention run "
                       "deletes it under the same rule", stem, incident)
    for manifest, incident, officer in mismatched:
        logger.error("catalog: segment %s names officer %r, but incident %s is attributed to %r; kept",
                     manifest.stem, manifest.officer, incident, officer)
    if lines:
        office.record_many(lines)
    result = []
    for manifest, *_ in checked:
        result.append(manifest.stem in new_stems)
        new_stems.discard(manifest.stem)  # the same segment twice in one batch: new once
    return result
