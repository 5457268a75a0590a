"""Is an incident's recording whole and authentic? Counted from its catalogued segments.

The reasons an incident needs a look, as the dashboard, the list and the incident page name them:
a segment whose signature failed, segments never checked (no device key enrolled), a segment missing
from the chain, a recording cut by a restart of the device (an end marker), or no final segment yet.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, F, Max, Q

from ..catalog.models import Segment

FAILED, UNVERIFIED, MISSING, RESTART, OPEN = "failed", "unverified", "missing", "restart", "open"


@dataclass(frozen=True)
class Health:
    segments: int     # with picture (end markers not counted)
    failed: int
    unverified: int
    missing: int      # indexes below the highest one that never arrived
    restarts: int     # end markers: the device restarted in the middle of the incident
    closed: bool      # a final segment (or an end marker) arrived

    @property
    def reasons(self) -> list[str]:
        found = []
        if self.failed:
            found.append(FAILED)
        if self.missing:
            found.append(MISSING)
        if self.restarts:
            found.append(RESTART)
        if not self.closed:
            found.append(OPEN)
        if self.unverified:
            found.append(UNVERIFIED)
        return found

    @property
    def ok(self) -> bool:
        return not self.reasons


def _aggregates(prefix: str = "") -> dict:
    p = prefix
    return {"n": Count(f"{p}id"), "top": Max(f"{p}segment_index"),
            "finals": Count(f"{p}id", filter=Q(**{f"{p}final": True})),
            "markers": Count(f"{p}id", filter=Q(**{f"{p}end_marker": True})),
            "failed_n": Count(f"{p}id", filter=Q(**{f"{p}verification": Segment.FAILED})),
            "unverified_n": Count(f"{p}id", filter=Q(**{f"{p}verification": Segment.UNVERIFIED}))}


def _health(row: dict) -> Health:
    top = -1 if row["top"] is None else row["top"]
    return Health(segments=row["n"] - row["markers"], failed=row["failed_n"], unverified=row["unverified_n"],
                  missing=max(0, top + 1 - row["n"]), restarts=row["markers"], closed=row["finals"] > 0)


def health_by_incident(incident_pks) -> dict[int, Health]:
    """One query for a page of incidents."""
    rows = (Segment.objects.filter(incident_id__in=list(incident_pks)).values("incident_id")
            .annotate(**_aggregates()).order_by())
    return {row["incident_id"]: _health(row) for row in rows}


def needing_a_look(incidents):
    """``incidents`` (a QuerySet) narrowed to those with a reason, each annotated for :func:`health_of_row`."""
    annotated = incidents.annotate(**_aggregates("segments__"))
    return annotated.filter(Q(failed_n__gt=0) | Q(unverified_n__gt=0) | Q(markers__gt=0) | Q(finals=0)
                            | Q(n__lt=F("top") + 1))


def health_of_row(incident) -> Health:
    """The health of an incident from :func:`needing_a_look`'s annotations."""
    return _health({k: getattr(incident, k) for k in ("n", "top", "finals", "markers", "failed_n", "unverified_n")})
