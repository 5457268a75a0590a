"""The data-protection officer's pages: who accessed which incident, what was deleted under which rule,
what expires when, and a GDPR Art. 15 search by place and time. Records only; no video anywhere here.

Each page is a report, and reading one is itself recorded (:func:`reports.record_read`: ``report_read``
with the report's kind and parameters, the reader and the address) before its rows are read."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.utils import timezone

from ...catalog import reports
from ...catalog.models import Access, RuleError
from .. import office_link
from ..access import PRIVACY, roles_required
from ..client import client_address
from ..forms import AccessFilterForm, DaysForm, SubjectForm
from ..refusals import refusal_text
from .incidents import PAGE_SIZE, _page_number


def _day_start(day) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


def _read(request, kind: str, parameters: dict) -> None:
    """Record the reading (or the refusal, then 403) before the report runs."""
    try:
        reports.record_read(office_link.office(), kind=kind, parameters=parameters, by=request.user,
                            via=client_address(request))
    except RuleError:
        raise PermissionDenied from None


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
    data = form.cleaned_data if form.is_valid() else {}
    _read(request, "access_log", {"since": data["since"].isoformat() if data.get("since") else None,
                                  "until": data["until"].isoformat() if data.get("until") else None,
                                  "user": data.get("user") or None, "page": page})
    found = list(rows[(page - 1) * PAGE_SIZE: page * PAGE_SIZE + 1])
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "web/privacy/accesses.html", {
        "form": form, "rows": found[:PAGE_SIZE], "page": page, "has_next": len(found) > PAGE_SIZE,
        "query": query.urlencode()})


@roles_required(*PRIVACY)
def deletions(request):
    days, now = _days(request, 30), office_link.now()
    _read(request, "deletions", {"days": days})
    return render(request, "web/privacy/deletions.html", {
        "days": days, "rows": reports.deletions(now - timedelta(days=days), now), "form": DaysForm(initial={"days": days})})


@roles_required(*PRIVACY)
def expiring(request):
    days, now = _days(request, 7), office_link.now()
    _read(request, "expiring", {"days": days})
    return render(request, "web/privacy/expiring.html", {
        "days": days, "rows": reports.expiring(now, now + timedelta(days=days)), "form": DaysForm(initial={"days": days})})


@roles_required(*PRIVACY)
def subject(request):
    """Art. 15: every recording at a site in a time window, with its holds, deletion and accesses."""
    form = SubjectForm(request.GET or None)
    rows = None
    if form.is_valid():
        data = form.cleaned_data
        _read(request, "subject", {"site": data["site"], "from": data["since"].astimezone(UTC).isoformat(),
                                   "to": data["until"].astimezone(UTC).isoformat()})
        try:
            rows = reports.subject_report(data["site"], data["since"], data["until"])
        except RuleError as exc:  # the form checks the same; a site removed meanwhile
            form.add_error(None, refusal_text(exc))
    return render(request, "web/privacy/subject.html", {"form": form, "rows": rows})
