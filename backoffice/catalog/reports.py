"""Reports for the data-protection officer: what expires when, and what was deleted under which rule.

Plain rows (dicts of JSON values), so the command prints them as a table or as JSON.
"""

from __future__ import annotations

from datetime import datetime

from .models import Incident, Tombstone


def expiring(now: datetime, until: datetime) -> list[dict]:
    """Active incidents whose rule deletes them by ``until``; held ones are listed with their holds."""
    rows = []
    for inc in (Incident.objects.filter(state=Incident.ACTIVE, expires_at__lte=until)
                .select_related("site", "device").order_by("expires_at", "pk")):
        holds = [f"{h.case_reference}" for h in inc.active_holds().order_by("pk")]
        rows.append({"site": inc.site.code, "incident": str(inc), "end": inc.end.isoformat(),
                     "expires_at": inc.expires_at.isoformat(), "overdue": inc.expires_at <= now,
                     "held": holds, "rule": inc.site.rule()})
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
