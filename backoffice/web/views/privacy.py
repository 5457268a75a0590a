"""The data-protection officer's pages: who accessed which incident, what was deleted under which rule,
what expires when, and a GDPR Art. 15 search by place and time. Records only; no video anywhere here."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.shortcuts import render
from django.utils import timezone

from ...catalog import reports
from ...catalog.models import Access
from .. import office_link
from ..access import PRIVACY, roles_required
from ..forms import AccessFilterForm, DaysForm, SubjectForm
from .incidents import PAGE_SIZE, _page_number


def _day_start(day) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


def _days(request, default: int) -> int:
    form = DaysForm(request.GET or None)
    return form.cleaned_data["days"] if form.is_valid() and form.cleaned_data["days"] is not None else default


@roles_required(*PRIVACY)
def accesses(request):
    form = AccessFilterForm(request.GET or None)
    rows = Access.objects.select_related("user", "incident__device", "incident__site").order_by("-at", "-pk")
    if form.is_valid():
        data = form.cleaned_data
        if data["since"]:
            rows = rows.filter(at__gte=_day_start(data["since"]))
        if data["until"]:
            rows = rows.filter(at__lt=_day_start(data["until"] + timedelta(days=1)))
        if data["user"]:
            rows = rows.filter(user__username=data["user"])
    page = _page_number(request)
    found = list(rows[(page - 1) * PAGE_SIZE: page * PAGE_SIZE + 1])
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "web/privacy/accesses.html", {
        "form": form, "rows": found[:PAGE_SIZE], "page": page, "has_next": len(found) > PAGE_SIZE,
        "query": query.urlencode()})


@roles_required(*PRIVACY)
def deletions(request):
    days, now = _days(request, 30), office_link.now()
    return render(request, "web/privacy/deletions.html", {
        "days": days, "rows": reports.deletions(now - timedelta(days=days), now), "form": DaysForm(initial={"days": days})})


@roles_required(*PRIVACY)
def expiring(request):
    days, now = _days(request, 7), office_link.now()
    return render(request, "web/privacy/expiring.html", {
        "days": days, "rows": reports.expiring(now, now + timedelta(days=days)), "form": DaysForm(initial={"days": days})})


@roles_required(*PRIVACY)
def subject(request):
    """Art. 15: every recording at a site in a time window, with its accesses (reports.subject_report)."""
    form = SubjectForm(request.GET or None)
    report = getattr(reports, "subject_report", None)  # arrives with the access reports; the page waits for it
    rows = None
    if report is not None and form.is_valid():
        data = form.cleaned_data
        rows = report(data["site"], data["since"], data["until"])
    return render(request, "web/privacy/subject.html", {"form": form, "available": report is not None, "rows": rows,
                                                        "columns": list(rows[0]) if rows else []})
