"""The player: a page, the incident's timeline as JSON, and each segment as a fragmented MP4 piece for the
browser's Media Source Extensions (static/web/player.js).

Every request is checked here, not only the page: the access must be the requester's own playback access,
opened (its purpose stated) in this very session, for an incident they may still watch; otherwise 403,
and the attempt is an ``access_refused`` line. Each piece is decrypted by the custodian for the access's
ticket (renewed when near its end, :mod:`..custody_link`), which logs ``segment_decrypted`` for it; the
plaintext passes through this process's memory into the response and is never written to disk. The
response says ``no-store``, so the browser keeps no copy in its cache either.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from base.ids import is_stem

from ...catalog import office as events
from ...catalog.models import Access, Incident, may_see
from ...custody.client import CustodianError, CustodianRefused, CustodianUnavailable
from ...custody.media import IncidentMedia, MediaError
from .. import custody_link, office_link
from ..access import ANY_ROLE, roles_required
from ..client import client_address

logger = logging.getLogger(__name__)


def _checked(request, pk: int) -> Access:
    """The access, if this request may use it for playback; else 403 (recorded when the access exists)."""
    access = Access.objects.select_related("incident__device", "incident__site", "user").filter(pk=pk).first()
    if access is None:
        raise PermissionDenied
    incident = access.incident
    reason = None
    if access.user_id != request.user.pk:
        reason = f"access {access.pk} belongs to {access.user.username}"
    elif access.kind != Access.PLAYBACK:
        reason = f"access {access.pk} is a {access.kind} access, not playback"
    elif not custody_link.opened_here(request, access):
        reason = f"access {access.pk} was not opened in this session; state the purpose again"
    elif incident.state != Incident.ACTIVE:
        reason = f"incident {incident} is {incident.state}; its video is gone"
    elif not may_see(request.user, incident, video=True):
        reason = f"{request.user.username} may no longer watch {incident}"
    if reason:
        office_link.office().record(events.ACCESS_REFUSED, incident=str(incident), kind=Access.PLAYBACK,
                                    by=request.user.username, via=client_address(request), reason=reason)
        logger.warning("playback refused: %s", reason)
        raise PermissionDenied
    return access


def _stems(incident: Incident) -> tuple[str, ...]:
    """The incident's video segments (the ones its tickets grant)."""
    return tuple(incident.segments.filter(end_marker=False).order_by("seq").values_list("stem", flat=True))


@lru_cache(maxsize=32)
def _media(folder: str, stems: tuple[str, ...]) -> IncidentMedia:
    """The timeline from the signed manifests; they never change once stored, so each worker reads them once."""
    return IncidentMedia.from_store(folder, stems)


def _media_of(incident: Incident) -> IncidentMedia:
    return _media(str(Path(office_link.office().store_dir) / incident.store_path), _stems(incident))


@require_GET
@roles_required(*ANY_ROLE)
def player(request, access: int):
    access = _checked(request, access)
    return render(request, "web/player.html", {"access": access, "incident": access.incident})


@require_GET
@roles_required(*ANY_ROLE)
def timeline(request, access: int):
    """Where each segment lies (seconds from the first picture) and where to fetch it. A piece's MediaSource
    type and timestampOffset come with the piece (they are read from the stream itself)."""
    access = _checked(request, access)
    try:
        media = _media_of(access.incident)
    except MediaError as exc:
        logger.error("playback of %s: %s", access.incident, exc)
        return JsonResponse({"error": str(exc)}, status=409)
    return JsonResponse({
        "incident": str(access.incident), "duration_s": media.duration_s,
        "slots": [{"stem": s.stem, "start_s": s.start_s, "duration_s": s.duration_s,
                   "audio": s.manifest.has_audio, "mime": None,
                   "url": reverse("playback_piece", kwargs={"access": access.pk, "stem": s.stem})}
                  for s in media.slots]})


@require_GET
@roles_required(*ANY_ROLE)
def piece(request, access: int, stem: str):
    """One segment as a self-contained fragmented MP4; ``X-Timestamp-Offset`` says where it goes."""
    access = _checked(request, access)
    if not is_stem(stem):
        raise Http404
    office = office_link.office()
    try:
        media = _media_of(access.incident)
        media.slot(stem)
    except MediaError as exc:
        raise Http404(str(exc)) from None
    ticket = custody_link.current_ticket(request, office, access)
    try:
        with custody_link.client().open_segment(ticket, stem) as plaintext:
            segment = media.media_segment(stem, plaintext)
    except CustodianUnavailable as exc:
        logger.error("%s", exc)
        return HttpResponse(_("The custodian does not answer."), status=503, content_type="text/plain")
    except CustodianRefused as exc:
        logger.warning("playback of %s (access %d): %s", stem, access.pk, exc)
        return HttpResponse(_("The custodian refused this segment (%(code)s).") % {"code": exc.code}, status=409,
                            content_type="text/plain")
    except (CustodianError, MediaError) as exc:
        logger.error("playback of %s (access %d): %s", stem, access.pk, exc)
        return HttpResponse(_("This segment could not be prepared for playback."), status=502,
                            content_type="text/plain")
    response = HttpResponse(segment.data, content_type=segment.mime)
    response["X-Timestamp-Offset"] = repr(segment.timestamp_offset_s)
    response["Cache-Control"] = "no-store"
    return response
