"""Watching and exporting: the reviewer states a purpose, the access is checked and recorded
(:meth:`Access.open`, the one rule: the data-protection officer and admins never get video), then the
custodian does the work.

This process never decrypts: the custodian (its own process, user and key, docs/REVIEW.md) streams the
fragmented MP4 and builds the court package. Until it is connected here, :func:`_hand_to_custodian`
answers 503 and says so; the access stays recorded, since the request was made and allowed.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from ...catalog.models import Access, Incident, RuleError, may_see
from .. import office_link
from ..access import ANY_ROLE, roles_required
from ..client import client_address
from ..forms import PurposeForm


def _open(request, pk: int, kind: str):
    incident = get_object_or_404(Incident, pk=pk)
    form = PurposeForm(request.POST)
    purpose = form.cleaned_data["purpose"] if form.is_valid() else ""
    try:
        access = Access.open(office_link.office(), user=request.user, incident=incident, kind=kind, purpose=purpose,
                             via=client_address(request))
    except RuleError as exc:
        if not may_see(request.user, incident, video=True):
            raise PermissionDenied from None
        messages.error(request, _("Refused: %(reason)s") % {"reason": exc})
        return redirect("incident_detail", pk=incident.pk)
    return _hand_to_custodian(request, access)


def _hand_to_custodian(request, access: Access):
    """The seam for the custodian (backoffice/custody): playback streams, export builds the package."""
    return render(request, "web/video_unavailable.html", {"access": access, "incident": access.incident},
                  status=503)


@require_POST
@roles_required(*ANY_ROLE)
def play(request, pk: int):
    return _open(request, pk, Access.PLAYBACK)


@require_POST
@roles_required(*ANY_ROLE)
def export(request, pk: int):
    return _open(request, pk, Access.EXPORT)
