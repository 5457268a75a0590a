"""Reports for the data-protection officer: what expires when, what was deleted under which rule, who
accessed an incident, and everything about the incidents of one place and time (a GDPR Art. 15 request).

Plain rows (dicts of JSON values), so the command prints them as a table or as JSON. Each query runs a
fixed number of SQL statements whatever the number of rows (select_related / prefetch_related, no query per
row): the access report is benchmarked on a catalog of 1 M incidents. Reading a report is itself recorded
(:func:`record_read`), and only the roles in :data:`READERS` may.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Prefetch

from . import office as events
from .models import Access, Hold, Incident, RuleError, Site, Tombstone
from .roles import ADMIN, DATA_PROTECTION, SUPERVISOR, has_role

#: Who may read reports: the data-protection officer, supervisors (they approve deletions and releases)
#: and admins. Reports hold who-saw-what and where people were filmed, never video.
READERS = (DATA_PROTECTION, SUPERVISOR, ADMIN)

#: Rows of :func:`expiring` a caller gets unless it asks for another page size (or for all, with None).
EXPIRING_PAGE = 100


def record_read(office, *, kind: str, parameters: dict, by, via: str | None = None) -> None:
    """Check that ``by`` may read reports and record the reading (``report_read``) -- or the refusal
    (``report_refused``, then :class:`RuleError`). Call it before running the report."""
    where = {"via": via} if via else {}
    if not any(has_role(by, role) for role in READERS):
        reason = f"{by.username} may not read reports (needs one of: {', '.join(READERS)})"
        office.record(events.REPORT_REFUSED, kind=kind, parameters=parameters, by=by.username, reason=reason,
                      **where)
        raise RuleError(reason, "needs_role", user=by.username, roles=READERS)
    office.record(events.REPORT_READ, kind=kind, parameters=parameters, by=by.username, **where)


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


#: The order of events that share one instant (an approval lifts a hold, then deletes, in the same second).
_CAUSAL = (events.ACCESS, events.ACCESS_REFUSED, events.HOLD_PLACED, events.DECISION_PROPOSED,
           events.DECISION_APPROVED, events.HOLD_LIFTED, events.INCIDENT_DELETED)


def _event(at: datetime, event: str, by: str, *, kind: str = "", purpose: str = "", via: str = "",
           note: str = "") -> dict:
    return {"at": at, "event": event, "by": by, "kind": kind, "purpose": purpose, "via": via, "note": note}


def access_report(incident: Incident) -> list[dict]:
    """Everything done with one incident, oldest first: each access (who, when, kind, stated purpose, via),
    each refused attempt (with the reason), holds placed and lifted, four-eyes proposals and approvals,
    and its deletion. One row per event: ``at, event, by, kind, purpose, via, note`` (strings).

    Five indexed queries, whatever the incident's history. The signed office audit log holds the same
    events; this reads the catalog's rows so it stays fast on a year's log.
    """
    rows = [_event(a.at, events.ACCESS, a.user.username, kind=a.kind, purpose=a.purpose, via=a.via)
            for a in incident.accesses.select_related("user").order_by("at", "pk")]
    rows += [_event(r.at, events.ACCESS_REFUSED, r.user.username, kind=r.kind, purpose=r.purpose, via=r.via,
                    note=r.reason) for r in incident.access_refusals.select_related("user").order_by("at", "pk")]
    for h in incident.holds.select_related("placed_by", "lifted_by").order_by("pk"):
        rows.append(_event(h.placed_at, events.HOLD_PLACED, h.placed_by.username, kind="hold",
                           purpose=f"{h.case_reference}: {h.reason}", note=f"hold {h.pk}"))
        if h.lifted_at is not None:
            rows.append(_event(h.lifted_at, events.HOLD_LIFTED, h.lifted_by.username, kind="hold",
                               purpose=h.case_reference, note=f"hold {h.pk}"))
    for d in incident.decisions.select_related("proposed_by", "approved_by").order_by("pk"):
        rows.append(_event(d.proposed_at, events.DECISION_PROPOSED, d.proposed_by.username, kind=d.kind,
                           purpose=d.reason, note=f"decision {d.pk}"))
        if d.approved_at is not None:
            rows.append(_event(d.approved_at, events.DECISION_APPROVED, d.approved_by.username, kind=d.kind,
                               purpose=d.reason, note=f"decision {d.pk}"))
    tombstone = Tombstone.objects.filter(incident=incident).first()
    if tombstone is not None:
        done = (f"completed {tombstone.completed_at.isoformat()}" if tombstone.completed_at
                else "not completed yet (the next retention run finishes it)")
        rows.append(_event(tombstone.created_at, events.INCIDENT_DELETED, " and ".join(tombstone.decided_by),
                           kind="deletion", purpose=tombstone.rule, note=f"tombstone {tombstone.pk}, {done}"))
    rows.sort(key=lambda r: (r["at"], _CAUSAL.index(r["event"])))  # one instant: cause before effect
    return [{**r, "at": r["at"].isoformat()} for r in rows]


def subject_report(site: str, since: datetime, until: datetime) -> list[dict]:
    """For a person filmed at ``site`` some time in [since, until] (GDPR Art. 15): every incident of that
    site overlapping the window -- device, officer, times, state, holds, the deletion (tombstone) -- with
    every access to it. Four queries, whatever the number of incidents."""
    if since > until:
        raise RuleError(f"the window's start {since.isoformat()} is after its end {until.isoformat()}",
                        "window_order")
    try:
        place = Site.objects.get(code=site)
    except Site.DoesNotExist:
        raise RuleError(f"no site {site!r} in the catalog", "unknown_site", site=site) from None
    holds = Prefetch("holds", queryset=Hold.objects.select_related("placed_by", "lifted_by")
                     .order_by("placed_at", "pk"))
    accesses = Prefetch("accesses", queryset=Access.objects.select_related("user").order_by("at", "pk"))
    earliest = since - timedelta(seconds=place.longest_incident_s)  # no incident there lasted longer
    incidents = (Incident.objects.filter(site=place, start__gte=earliest, start__lte=until, end__gte=since)
                 .select_related("device", "tombstone").prefetch_related(holds, accesses).order_by("start", "pk"))
    rows = []
    for inc in incidents:
        tombstone = getattr(inc, "tombstone", None)
        rows.append({
            "incident": str(inc), "device": inc.device.device_id, "officer": inc.officer,
            "start": inc.start.isoformat(), "end": inc.end.isoformat(), "state": inc.state,
            "expires_at": inc.expires_at.isoformat(),
            "holds": [{"hold": h.pk, "case_reference": h.case_reference, "reason": h.reason,
                       "placed_by": h.placed_by.username, "placed_at": h.placed_at.isoformat(),
                       "lifted_by": h.lifted_by.username if h.lifted_by else None,
                       "lifted_at": h.lifted_at.isoformat() if h.lifted_at else None} for h in inc.holds.all()],
            "deletion": None if tombstone is None else {
                "tombstone": tombstone.pk, "deleted_at": tombstone.created_at.isoformat(),
                "completed_at": tombstone.completed_at.isoformat() if tombstone.completed_at else None,
                "rule": tombstone.rule, "decided_by": tombstone.decided_by},
            "accesses": [{"at": a.at.isoformat(), "by": a.user.username, "kind": a.kind, "purpose": a.purpose,
                          "via": a.via} for a in inc.accesses.all()],
        })
    return rows
