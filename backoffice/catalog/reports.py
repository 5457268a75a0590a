"""Reports for the data-protection officer: what expires when, and what was deleted under which rule.

Plain rows (dicts of JSON values), so the command prints them as a table or as JSON.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Prefetch

from .models import Access, Hold, Incident, Tombstone

#: Rows of :func:`expiring` a caller gets unless it asks for another page size (or for all, with None).
EXPIRING_PAGE = 100


def expiring(now: datetime, until: datetime, *, limit: int | None = EXPIRING_PAGE, offset: int = 0) -> list[dict]:
    """Active incidents whose rule deletes them by ``until``, soonest first; held ones with their holds.

    One page of ``limit`` rows from ``offset`` (None: every row, for the command's full report, fetched a
    page at a time): a year's catalog holds tens of thousands of them, and a page costs two indexed
    queries however many there are.
    """
    if limit is not None:
        return _expiring_page(now, until, offset, limit)
    rows: list[dict] = []
    while page := _expiring_page(now, until, offset + len(rows), 10 * EXPIRING_PAGE):
        rows += page
    return rows


def _expiring_page(now: datetime, until: datetime, offset: int, limit: int) -> list[dict]:
    active_holds = Prefetch("holds", queryset=Hold.objects.filter(lifted_at__isnull=True).order_by("pk"),
                            to_attr="holds_on")
    page = (Incident.objects.filter(state=Incident.ACTIVE, expires_at__lte=until)
            .select_related("site", "device").prefetch_related(active_holds)
            .order_by("expires_at", "pk")[offset:offset + limit])
    rows = []
    for inc in page:
        rows.append({"site": inc.site.code, "incident": str(inc), "end": inc.end.isoformat(),
                     "expires_at": inc.expires_at.isoformat(), "overdue": inc.expires_at <= now,
                     "held": [h.case_reference for h in inc.holds_on], "rule": inc.site.rule()})
    return rows


def deletions(since: datetime, until: datetime) -> list[dict]:
    """Completed deletions in [since, until): the tombstones, with sizes."""
    rows = []
    for t in (Tombstone.objects.filter(completed_at__gte=since, completed_at__lt=until)
              .select_related("incident__site", "incident__device").order_by("completed_at", "pk")):
        rows.append({"site": t.incident.site.code, "incident": str(t.incident), "deleted_at": t.created_at.isoformat(),
                     "rule": t.rule, "decided_by": t.decided_by, "segments": len(t.segments),
                     "bytes": sum(s["ciphertext_bytes"] for s in t.segments), "tombstone": t.pk})
    return rows


def access_report(incident: Incident) -> list[dict]:
    """Every access to one incident, oldest first: who, when, what (page, playback, export), why, from where."""
    return [{"at": a.at.isoformat(), "user": a.user.username, "kind": a.kind, "purpose": a.purpose, "via": a.via}
            for a in Access.objects.filter(incident=incident).select_related("user").order_by("at", "pk")]
