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


def reconcile(office, devices: dict[str, DevicePublicKey] | None = None) -> IngestReport:
    """Scan ``<store>/<site>/<device>/<incident>/*.manifest.json`` and catalog what is missing.

    ``devices``: enrolled keys by key id (:func:`evidence.keys.load_device_public_keys`)."""
    report = IngestReport()
    store = Path(office.store_dir)
    paths = sorted(store.glob(f"*/*/*/*{MANIFEST_SUFFIX}"))
    known = cataloged([path.name.removesuffix(MANIFEST_SUFFIX) for path in paths])
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
        record_segment(office, manifest, path.parent.relative_to(store), devices)
        report.added += 1
    return report


def _locked_incident(manifest: Manifest) -> Incident | None:
    """The manifest's incident, locked for this transaction, with its site (whose rule sets the expiry), in
    one query: most segments belong to an incident already cataloged, and each round trip to the database
    is paid by every segment the receiver stores before its receipt."""
    return (Incident.objects.select_for_update(of=("self",)).select_related("site")
            .filter(device__device_id=manifest.device_id, incident_id=manifest.incident_id).first())


def cataloged(stems: list[str], batch: int = 500) -> set[str]:
    """Which of ``stems`` the catalog holds: asked in batches, since a year's catalog holds ten million
    (loading them all made each receiver start take a minute and a gigabyte)."""
    found: set[str] = set()
    for i in range(0, len(stems), batch):
        found.update(Segment.objects.filter(stem__in=stems[i:i + batch]).values_list("stem", flat=True))
    return found


#: What a new segment changes in its incident's row (an UPDATE of these alone: fewer columns to build and write).
GROWING_FIELDS = ("start", "end", "frame_count", "pre_event_frames", "expires_at", "officer", "state")


def record_segment(office, manifest: Manifest, incident_dir: Path, devices: dict[str, DevicePublicKey] | None) -> bool:
    """Catalog one durably stored segment (the receiver calls this before its receipt goes out); True if it
    was new, False if the catalog held it already."""
    verification = Segment.UNVERIFIED
    key = (devices or {}).get(manifest.signing_key_id)
    if key is not None:
        try:
            verify_manifest(manifest.raw, key)
            verification = Segment.VERIFIED
        except ManifestError:
            verification = Segment.FAILED
    start, end = _when(manifest.start_time), _when(manifest.end_time)
    with transaction.atomic():
        incident = _locked_incident(manifest)
        if incident is None:  # the incident's first segment to arrive (its site and device may be new too)
            site, _ = Site.objects.get_or_create(code=manifest.site)
            device, _ = Device.objects.get_or_create(device_id=manifest.device_id, defaults={"site": site})
            incident, _ = Incident.objects.select_for_update().get_or_create(
                device=device, incident_id=manifest.incident_id,
                defaults={"site": site, "start": start, "end": end, "store_path": str(incident_dir),
                          "expires_at": end})
        # No savepoint needed around the insert: the incident's row is locked, so nobody else inserts this
        # incident's segment between the look-up and the insert (SQLite has one writer anyway).
        new = not Segment.objects.filter(stem=manifest.stem).exists()
        if new:
            segment = Segment.objects.create(
                stem=manifest.stem, incident=incident, seq=manifest.seq, segment_index=manifest.segment_index,
                final=manifest.final, end_marker=manifest.is_end_marker, start=start, end=end,
                frame_count=manifest.frame_count, pre_event_frames=manifest.pre_event_frames,
                ciphertext_sha256=manifest.ciphertext_sha256, ciphertext_bytes=manifest.ciphertext_bytes,
                manifest_sha256=manifest.sha256, verification=verification)
        attributed, mismatch = None, None
        if new and manifest.officer and verification == Segment.VERIFIED:
            if not incident.officer:
                incident.officer = attributed = manifest.officer
            elif incident.officer != manifest.officer:
                mismatch = incident.officer
        late = new and incident.state != Incident.ACTIVE
        if late:  # its incident is deleted already: the segment goes the same way at the next retention run
            join_deletion(incident, segment)
        if new:
            incident.start, incident.end = min(incident.start, start), max(incident.end, end)
            incident.frame_count += manifest.frame_count
            incident.pre_event_frames += manifest.pre_event_frames
            incident.recompute_expiry()
            incident.save(update_fields=GROWING_FIELDS)
            incident.site.cover(incident)
    if late:
        logger.warning("catalog: segment %s arrived after its incident %s was deleted; the next retention run "
                       "deletes it under the same rule", manifest.stem, incident)
        office.record(events.SEGMENT_AFTER_DELETION, incident=str(incident), stem=manifest.stem,
                      ciphertext_sha256=manifest.ciphertext_sha256)
    if new:
        office.record(events.SEGMENT_CATALOGED, site=manifest.site, device=manifest.device_id,
                      incident_id=manifest.incident_id, stem=manifest.stem,
                      ciphertext_sha256=manifest.ciphertext_sha256, verification=verification,
                      officer=manifest.officer)
    if attributed:
        office.record(events.INCIDENT_ATTRIBUTED, incident=str(incident), officer=attributed, stem=manifest.stem)
    if mismatch:
        logger.error("catalog: segment %s names officer %r, but incident %s is attributed to %r; kept",
                     manifest.stem, manifest.officer, incident, mismatch)
        office.record(events.OFFICER_MISMATCH, incident=str(incident), officer=mismatch,
                      manifest_officer=manifest.officer, stem=manifest.stem)
    return new
