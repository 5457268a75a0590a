"""The incident list: the one query behind every list of incidents (a site's day, a device, an officer's own).

It returns a QuerySet ordered by start, so a page is a slice of it (``incident_list(site=s, day=d)[:50]``)
and the database does the paging. Every filter it offers is served by an index (migration 0004; the
benchmark in bench/bench_catalog.py and tests/office/test_query_plans.py hold it to that).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from .models import Device, Hold, Incident, Site


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of ``day`` in the current time zone (UTC unless the caller activated the city's)."""
    tz = timezone.get_current_timezone()
    start = timezone.make_aware(datetime.combine(day, time.min), tz)
    return start, timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min), tz)


def incident_list(*, site: Site | str | None = None, day: date | None = None, device: Device | str | None = None,
                  officer: str | None = None, state: str | None = None, held: bool | None = None) -> QuerySet:
    """Incidents matching every filter given (None or empty: not filtered), oldest start first.

    ``site`` and ``device`` are rows or their codes (the review app's filters are codes); ``day`` selects
    incidents that started that day; ``held`` True those with a hold on, False those without.
    """
    rows = Incident.objects.select_related("site", "device")
    if site:
        rows = rows.filter(site__code=site) if isinstance(site, str) else rows.filter(site=site)
    if device:
        rows = rows.filter(device__device_id=device) if isinstance(device, str) else rows.filter(device=device)
    if officer:
        rows = rows.filter(officer=officer)
    if day is not None:
        start, end = day_bounds(day)
        rows = rows.filter(start__gte=start, start__lt=end)
    if state:
        rows = rows.filter(state=state)
    if held is not None:
        on = Exists(Hold.objects.filter(incident=OuterRef("pk"), lifted_at__isnull=True))
        rows = rows.filter(on if held else ~on)
    return rows.order_by("start", "pk")
