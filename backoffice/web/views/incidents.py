"""The incident list (filters, pages) and the incident page (verification in words, timeline, holds,
decisions, access history). Opening the page is an access (kind ``page``), recorded before anything is
shown; its access history is the catalog's access report (:func:`reports.access_report`: accesses,
refused attempts, holds, decisions, the deletion), which the page access itself records as read."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, render

from ...catalog import reports
from ...catalog.models import Access, Hold, Incident, RuleError, may_see, visible_incidents
from ...catalog.queries import incident_list
from ...catalog.roles import SUPERVISOR
from .. import office_link, timeline
from ..access import ANY_ROLE, HOLDERS, PROPOSERS, roles_of, roles_required
from ..client import client_address
from ..forms import HoldForm, IncidentFilterForm, PurposeForm, ReasonForm
from ..health import health_by_incident

PAGE_SIZE = 50


def _page_number(request) -> int:
    try:
        return max(1, int(request.GET.get("page", "1")))
    except ValueError:
        return 1


@roles_required(*ANY_ROLE)
def incident_list_view(request):
    form = IncidentFilterForm(request.GET or None)
    filters = form.filters() if form.is_valid() else {}
    incidents = visible_incidents(request.user, incident_list(**filters)).reverse()  # newest first
    page = _page_number(request)
    rows = list(incidents[(page - 1) * PAGE_SIZE: page * PAGE_SIZE + 1])  # one more: is there a next page?
    has_next, rows = len(rows) > PAGE_SIZE, rows[:PAGE_SIZE]
    health = health_by_incident(r.pk for r in rows)
    held = set(Hold.objects.filter(incident__in=[r.pk for r in rows], lifted_at__isnull=True)
               .values_list("incident_id", flat=True))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "web/incident_list.html", {
        "form": form, "rows": [(r, health.get(r.pk), r.pk in held) for r in rows], "page": page,
        "has_next": has_next, "query": query.urlencode(),
    })


@roles_required(*ANY_ROLE)
def incident_detail(request, pk: int):
    incident = get_object_or_404(Incident.objects.select_related("site", "device"), pk=pk)
    office, user = office_link.office(), request.user
    try:
        Access.open(office, user=user, incident=incident, kind=Access.PAGE, via=client_address(request))
    except RuleError:
        raise PermissionDenied from None
    segments = list(incident.segments.order_by("segment_index"))
    rows = timeline.build(incident, segments)
    holds = list(incident.holds.select_related("placed_by", "lifted_by").order_by("placed_at", "pk"))
    roles = roles_of(user)
    active = incident.state == Incident.ACTIVE
    return render(request, "web/incident_detail.html", {
        "incident": incident, "health": health_by_incident([incident.pk]).get(incident.pk),
        "missing": timeline.missing_indexes(segments), "timeline": rows, "pre_event": timeline.pre_event_total(rows),
        "segments": segments,
        "holds": holds, "held_cases": [h.case_reference for h in holds if h.lifted_at is None],
        "decisions": incident.decisions.select_related("proposed_by", "approved_by", "hold").order_by("proposed_at"),
        "history": list(reversed(reports.access_report(incident))),  # newest first
        "tombstone": getattr(incident, "tombstone", None) if incident.state != Incident.ACTIVE else None,
        "may_hold": active and bool(roles & set(HOLDERS)),
        "may_propose": active and bool(roles & set(PROPOSERS)),
        "may_approve": SUPERVISOR in roles,
        "may_watch": active and may_see(user, incident, video=True),
        "hold_form": HoldForm(), "reason_form": ReasonForm(), "purpose_form": PurposeForm(),
    })
