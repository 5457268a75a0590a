"""The retention run (the timer's job): finish interrupted deletions, then delete every expired, unheld incident.

A deletion (:meth:`.models.Incident.delete_with_tombstone`) runs in an order that makes a kill -9 at any
moment harmless:

1. one transaction: the tombstone (what, under which rule, by whom) and the incident's state ``deleting``;
2. the audit log's ``deletion_started`` line (with the hashes and sizes);
3. ``incident.tombstone.json`` written durably into the incident's store directory (:mod:`.storefiles`),
   so the store itself says what was there, readable without the catalog;
4. the ciphertexts and manifests unlinked (a missing one counts as done), the directory fsynced;
5. the audit log's ``incident_deleted`` line, then the tombstone marked complete and the incident ``deleted``.

A run takes the expired incidents in batches: step 1 for the whole batch in one transaction, step 2 for
each, steps 3-4 for several incidents at once (threads: the work is waiting for the disk), step 5's lines
for each and its transaction for the batch. Every incident still passes the steps in this order, so what
a kill leaves is the same as for a single deletion.

A run that finds a tombstone not yet complete repeats steps 2-5 for it (each is idempotent), so the audit
log may then name the same tombstone twice; readers take the tombstone id as the key. The same happens to
a deleted incident that a late segment has joined (:func:`.models.join_deletion`: its device was offline
past the retention period): its tombstone now names that segment too, and steps 2-5 remove it and sign the
tombstone anew, keeping the time the deletion first completed.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.db.models import Exists, OuterRef, Q

from . import office as events
from .models import Hold, Incident, Tombstone, begin_deletions, finish_deletions

logger = logging.getLogger(__name__)

RETENTION_ACTOR = "retention timer"
#: Incidents whose deletion shares one transaction for step 1 and one for step 5.
BATCH = 100
#: Incidents whose files are removed at once (steps 3-4): their fsyncs and unlinks wait on the disk together.
FILE_WORKERS = 8


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
    """Complete interrupted deletions, then delete every unheld incident whose rule has expired by now.

    Deletions go in batches of :data:`BATCH` (steps 1 and 5 each one transaction for the batch, the files of
    :data:`FILE_WORKERS` incidents removed at once); each incident's steps keep their order, so a kill at any
    moment leaves every incident active, deleting (finished by the next run) or deleted.
    """
    now = office.now()
    report = RetentionReport(now.isoformat(), dry_run)
    with ThreadPoolExecutor(FILE_WORKERS, thread_name_prefix="retention-files") as files:
        if not dry_run:
            # interrupted deletions, and deleted incidents a late segment has joined since (join_deletion)
            reopened = Q(completed_at__isnull=False, incident__state=Incident.DELETING)
            unfinished = sorted(
                (t for query in (Q(completed_at__isnull=True), reopened)
                 for t in Tombstone.objects.filter(query).select_related("incident__site", "incident__device")),
                key=lambda t: t.pk)
            finish_deletions(office, unfinished, files)
            report.resumed += [str(t.incident) for t in unfinished]
        held = Exists(Hold.objects.filter(incident=OuterRef("pk"), lifted_at__isnull=True))
        expired = list(Incident.objects.filter(state=Incident.ACTIVE, expires_at__lte=now).annotate(held=held)
                       .select_related("site", "device").order_by("expires_at", "pk"))
        report.held += [str(incident) for incident in expired if incident.held]
        due = [incident for incident in expired if not incident.held]
        for start in range(0, len(due), BATCH):
            batch = due[start:start + BATCH]
            if dry_run:
                report.deleted += [str(incident) for incident in batch]
                continue
            tombstones, refused = begin_deletions(office, batch, rule=lambda incident: incident.site.rule(),
                                                  by=[RETENTION_ACTOR])
            for incident, reason in refused:  # changed since it was chosen (a hold placed meanwhile, ...)
                logger.info("retention: %s", reason)
                if incident.active_holds().exists():
                    report.held.append(str(incident))
            finish_deletions(office, tombstones, files)
            report.deleted += [str(t.incident) for t in tombstones]
    if not dry_run:
        office.record(events.RETENTION_RUN, now=report.now, deleted=report.deleted, held=report.held,
                      resumed=report.resumed, dry_run=False)
    logger.info("%s", report.summary())
    return report
