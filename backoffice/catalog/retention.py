"""The retention run (the timer's job): finish interrupted deletions, then delete every expired, unheld incident.

A deletion (:meth:`.models.Incident.delete_with_tombstone`) runs in an order that makes a kill -9 at any
moment harmless:

1. one transaction: the tombstone (what, under which rule, by whom) and the incident's state ``deleting``;
2. the audit log's ``deletion_started`` line (with the hashes and sizes);
3. ``incident.tombstone.json`` written durably into the incident's store directory (:mod:`.storefiles`),
   so the store itself says what was there, readable without the catalog;
4. the ciphertexts and manifests unlinked (a missing one counts as done), the directory fsynced;
5. the audit log's ``incident_deleted`` line, then the tombstone marked complete and the incident ``deleted``.

A run that finds a tombstone not yet complete repeats steps 2-5 for it (each is idempotent), so the audit
log may then name the same tombstone twice; readers take the tombstone id as the key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from . import office as events
from .models import Incident, Tombstone

logger = logging.getLogger(__name__)

RETENTION_ACTOR = "retention timer"


@dataclass
class RetentionReport:
    now: str
    dry_run: bool
    deleted: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)

    def summary(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        return (f"retention at {self.now}: {verb} {len(self.deleted)} incident(s), {len(self.held)} expired but "
                f"held, {len(self.resumed)} interrupted deletion(s) completed")


def run_retention(office, *, dry_run: bool = False) -> RetentionReport:
    """Complete interrupted deletions, then delete every unheld incident whose rule has expired by now."""
    now = office.now()
    report = RetentionReport(now.isoformat(), dry_run)
    if not dry_run:
        for tombstone in Tombstone.objects.filter(completed_at__isnull=True).select_related("incident"):
            tombstone.finish(office)
            report.resumed.append(str(tombstone.incident))
    expired = (Incident.objects.filter(state=Incident.ACTIVE, expires_at__lte=now)
               .select_related("site", "device").order_by("expires_at"))
    for incident in expired:
        if incident.active_holds().exists():
            report.held.append(str(incident))
            continue
        report.deleted.append(str(incident))
        if not dry_run:
            incident.delete_with_tombstone(office, rule=incident.site.rule(), by=[RETENTION_ACTOR])
    if not dry_run:
        office.record(events.RETENTION_RUN, now=report.now, deleted=report.deleted, held=report.held,
                      resumed=report.resumed, dry_run=False)
    logger.info("%s", report.summary())
    return report
