"""Watching and exporting: the reviewer states a purpose, the access is checked and recorded
(:meth:`Access.open`, the one rule: the data-protection officer and admins never get video), a ticket is
issued for it, and the custodian decrypts.

This process never decrypts: the custodian (its own process, user and key, docs/REVIEW.md) streams each
segment's plaintext over its socket. Playback continues on the player page (:mod:`.playback`); an export
is the court package, streamed as the response while it is made. When the custodian does not answer,
both say so (503); the access stays recorded, since the request was made and allowed.
"""

from __future__ import annotations

import logging
from itertools import chain

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from ...catalog.models import Access, Incident, RuleError, may_see
from ...custody.client import CustodianError, CustodianUnavailable
from ...custody.package import PackageError, court_package
from ...custody.ticket import issue_ticket
from ...store import incident_dir_name
from .. import custody_link, office_link
from ..access import ANY_ROLE, roles_required
from ..client import client_address
from ..forms import PurposeForm
from ..refusals import refused_message

logger = logging.getLogger(__name__)


def _open(request, pk: int, kind: str):
    """The access (checked and recorded), the custodian reachable -- or the response that says why not."""
    incident = get_object_or_404(Incident, pk=pk)
    form = PurposeForm(request.POST)
    purpose = form.cleaned_data["purpose"] if form.is_valid() else ""
    try:
        access = Access.open(office_link.office(), user=request.user, incident=incident, kind=kind, purpose=purpose,
                             via=client_address(request))
    except RuleError as exc:
        if not may_see(request.user, incident, video=True):
            raise PermissionDenied from None
        messages.error(request, refused_message(exc))
        return None, redirect("incident_detail", pk=incident.pk)
    try:
        custody_link.client().probe()
    except CustodianUnavailable as exc:
        logger.error("%s", exc)
        return None, _unavailable(request, access)
    return access, None


def _unavailable(request, access: Access):
    return render(request, "web/video_unavailable.html", {"access": access, "incident": access.incident}, status=503)


@require_POST
@roles_required(*ANY_ROLE)
def play(request, pk: int):
    access, refused = _open(request, pk, Access.PLAYBACK)
    if refused is not None:
        return refused
    custody_link.remember(request, access, issue_ticket(office_link.office(), access))
    return redirect("playback_player", access=access.pk)


@require_POST
@roles_required(*ANY_ROLE)
def export(request, pk: int):
    """The court package as a download, made while it is sent: nothing of it is written here."""
    access, refused = _open(request, pk, Access.EXPORT)
    if refused is not None:
        return refused
    office = office_link.office()
    blocks = court_package(office, access, issue_ticket(office, access), custody_link.client(),
                           devices=custody_link.devices(), receipt_pub=custody_link.receipt_pub(),
                           lang=request.LANGUAGE_CODE if request.LANGUAGE_CODE in ("de", "en") else "de")
    try:  # the checks before the first byte: a refusal is still a page, not a broken download
        first = next(blocks)
    except (PackageError, CustodianError) as exc:
        logger.error("export of %s (access %d) refused: %s", access.incident, access.pk, exc)
        messages.error(request, _("Refused: %(reason)s") % {"reason": exc})
        return redirect("incident_detail", pk=access.incident_id)
    incident = access.incident
    name = f"court-package-{incident.device.device_id}-{incident_dir_name(incident.incident_id)}.zip"
    response = StreamingHttpResponse(_logged(chain([first], blocks), access), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _logged(blocks, access: Access):
    """The package's blocks; a failure after the first one breaks the download off (the browser reports it
    as failed) and is logged here, since no page can say it any more."""
    try:
        yield from blocks
    except (PackageError, CustodianError) as exc:
        logger.error("export of %s (access %d) broke off: %s", access.incident, access.pk, exc)
        raise
