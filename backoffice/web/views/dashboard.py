"""The start page: what expires soon, what waits for my approval, which recordings need a look and why,
and which devices have gone quiet."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Max
from django.shortcuts import render

from ...catalog.models import Decision, Device, Incident, visible_incidents
from ...catalog.roles import SUPERVISOR
from .. import office_link
from ..access import ANY_ROLE, roles_of, roles_required
from ..health import health_of_row, needing_a_look

SOON = timedelta(days=7)
#: Incidents older than this are not searched for problems on the dashboard (the list finds them all).
RECENT = timedelta(days=31)
SHOWN = 20


@roles_required(*ANY_ROLE)
def dashboard(request):
    user, now = request.user, office_link.now()
    mine = visible_incidents(user, Incident.objects.select_related("site", "device"))
    expiring = list(mine.filter(state=Incident.ACTIVE, expires_at__lte=now + SOON).order_by("expires_at", "pk")
                    .prefetch_related("holds")[:SHOWN])
    decisions = Decision.objects.filter(state=Decision.PROPOSED, incident__in=mine).select_related(
        "incident__device", "proposed_by", "hold").order_by("proposed_at")
    to_approve = list(decisions.exclude(proposed_by=user)[:SHOWN]) if SUPERVISOR in roles_of(user) else []
    proposed_by_me = list(decisions.filter(proposed_by=user)[:SHOWN])
    problems = [(inc, health_of_row(inc)) for inc in
                needing_a_look(mine.filter(state=Incident.ACTIVE, start__gte=now - RECENT)).order_by("-start")[:SHOWN]]
    quiet_since = now - timedelta(seconds=settings.REVIEW_QUIET_SECONDS)
    quiet = list(Device.objects.select_related("site").annotate(last=Max("incident__end"))
                 .filter(last__lt=quiet_since).order_by("last")[:SHOWN])
    return render(request, "web/dashboard.html", {
        "expiring": [(inc, [h for h in inc.holds.all() if h.lifted_at is None]) for inc in expiring],
        "to_approve": to_approve, "proposed_by_me": proposed_by_me, "problems": problems, "quiet": quiet,
        "soon_days": SOON.days, "quiet_hours": settings.REVIEW_QUIET_SECONDS // 3600, "now": now,
    })
