"""The catalog's list queries, shaped for the review app's incident list and its indexes."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from .models import Hold, Incident


def incident_list(*, site: str | None = None, day: date | None = None, device: str | None = None,
                  officer: str | None = None, state: str | None = None, held: bool | None = None) -> QuerySet:
    """Incidents matching every filter given, ordered by start. ``day`` is a calendar day in the current
    time zone (the review app activates the office's); ``held``: True only held ones, False only unheld."""
    incidents = Incident.objects.select_related("site", "device").order_by("start", "pk")
    if site:
        incidents = incidents.filter(site__code=site)
    if day:
        zone = timezone.get_current_timezone()
        first = datetime.combine(day, time.min, tzinfo=zone)
        after = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
        incidents = incidents.filter(start__gte=first, start__lt=after)
    if device:
        incidents = incidents.filter(device__device_id=device)
    if officer:
        incidents = incidents.filter(officer=officer)
    if state:
        incidents = incidents.filter(state=state)
    if held is not None:
        active_hold = Hold.objects.filter(incident=OuterRef("pk"), lifted_at__isnull=True)
        incidents = incidents.filter(Exists(active_hold)) if held else incidents.exclude(Exists(active_hold))
    return incidents
