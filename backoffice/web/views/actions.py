"""The incident page's decisions (POST, CSRF-checked): place a hold, propose an early deletion or a hold's
release, approve another person's proposal.

The rules (four eyes, roles per incident, a held incident cannot be deleted) are the catalog's; a refusal
comes back as a message on the incident page, and the catalog has written it to the audit log. Only
people who may never do an action, or may not see the incident at all, get 403.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from ...catalog.models import Decision, Hold, Incident, RuleError, may_see
from .. import office_link
from ..access import APPROVERS, HOLDERS, PROPOSERS, roles_required
from ..forms import HoldForm, ReasonForm
from ..refusals import refused_message


def _visible(request, incident: Incident) -> None:
    if not may_see(request.user, incident, video=False):
        raise PermissionDenied


def _refused(request, exc: RuleError) -> None:
    messages.error(request, refused_message(exc))


def _invalid(request, form) -> None:
    problems = "; ".join(f"{form.fields[name].label}: {' '.join(errors)}" if name in form.fields else " ".join(errors)
                         for name, errors in form.errors.items())
    messages.error(request, _("Not done: %(problems)s") % {"problems": problems})


@require_POST
@roles_required(*HOLDERS)
def place_hold(request, pk: int):
    incident = get_object_or_404(Incident, pk=pk)
    _visible(request, incident)
    form = HoldForm(request.POST)
    if not form.is_valid():
        _invalid(request, form)
    else:
        try:
            hold = incident.place_hold(office_link.office(), by=request.user, **form.cleaned_data)
            messages.success(request, _("Hold %(hold)d placed: the recording is kept as evidence until the hold is "
                                        "lifted.") % {"hold": hold.pk})
        except RuleError as exc:
            _refused(request, exc)
    return redirect("incident_detail", pk=incident.pk)


@require_POST
@roles_required(*PROPOSERS)
def propose_deletion(request, pk: int):
    incident = get_object_or_404(Incident, pk=pk)
    _visible(request, incident)
    form = ReasonForm(request.POST)
    if not form.is_valid():
        _invalid(request, form)
    else:
        try:
            decision = incident.propose_deletion(office_link.office(), by=request.user, reason=form.cleaned_data["reason"])
            messages.success(request, _("Early deletion proposed (decision %(decision)d): a supervisor other than you "
                                        "must approve it.") % {"decision": decision.pk})
        except RuleError as exc:
            _refused(request, exc)
    return redirect("incident_detail", pk=incident.pk)


@require_POST
@roles_required(*PROPOSERS)
def propose_release(request, pk: int):
    hold = get_object_or_404(Hold.objects.select_related("incident"), pk=pk)
    _visible(request, hold.incident)
    form = ReasonForm(request.POST)
    if not form.is_valid():
        _invalid(request, form)
    else:
        try:
            decision = hold.propose_release(office_link.office(), by=request.user, reason=form.cleaned_data["reason"])
            messages.success(request, _("Release of hold %(hold)d proposed (decision %(decision)d): a supervisor other "
                                        "than you must approve it.") % {"hold": hold.pk, "decision": decision.pk})
        except RuleError as exc:
            _refused(request, exc)
    return redirect("incident_detail", pk=hold.incident_id)


@require_POST
@roles_required(*APPROVERS)
def approve(request, pk: int):
    decision = get_object_or_404(Decision.objects.select_related("incident", "proposed_by"), pk=pk)
    _visible(request, decision.incident)
    try:
        decision.approve(office_link.office(), by=request.user)
        if decision.kind == Decision.EARLY_DELETION:
            messages.success(request, _("Approved: the recording is deleted; its tombstone records what was deleted, "
                                        "why and by whom."))
        else:
            messages.success(request, _("Approved: the hold is lifted; the normal retention rule applies again."))
    except RuleError as exc:
        _refused(request, exc)
    return redirect("incident_detail", pk=decision.incident_id)
