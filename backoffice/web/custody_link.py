"""The review app's side of key custody: the custodian's client, the enrolled device keys, and the tickets
of the accesses opened in this session.

A reviewer's playback access gets its ticket when the purpose is stated (:func:`remember`); the ticket is
kept in the session under the access's id, so only the browser that stated the purpose can use it, and a
new sign-in needs a new purpose. :func:`current_ticket` hands it out for each piece and, when less than
:data:`RENEW_BEFORE` of its life is left, issues a new one for the same access (``ticket_issued`` again):
a reviewer watching a long incident is never cut off, and a leaked ticket is still soon worthless.

This process holds the office key (it signs tickets), never the evidence key.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from base.utctime import parse_iso_utc

SESSION_KEY = "bodycam_tickets"
#: A ticket with less than this left is replaced before it is used (a piece is asked for in well under it).
RENEW_BEFORE = timedelta(minutes=3)
#: Accesses remembered per session; older ones need their purpose stated again.
MAX_REMEMBERED = 16


def client():
    from django.conf import settings

    from ..custody.client import CustodianClient

    return CustodianClient(settings.BODYCAM_CUSTODIAN_SOCKET)


def devices() -> dict:
    """The enrolled device keys (``BODYCAM_OFFICE_DEVICES``): the court package is verified with them."""
    from django.conf import settings

    from evidence.keys import load_device_public_keys

    return load_device_public_keys([settings.BODYCAM_OFFICE_DEVICES])


def receipt_pub():
    """The receivers' receipt key for the court package, or None where it is not installed."""
    from django.conf import settings

    path = settings.BODYCAM_RECEIPT_PUB
    return path if path.is_file() else None


def _expires_at(ticket: str) -> datetime:
    return datetime.fromtimestamp(parse_iso_utc(json.loads(ticket)["expires_at"]), UTC)


def remember(request, access, ticket: bytes) -> None:
    """Keep ``ticket`` for ``access`` in this session (the newest :data:`MAX_REMEMBERED` accesses)."""
    tickets = dict(request.session.get(SESSION_KEY, {}))
    tickets[str(access.pk)] = ticket.decode("ascii")
    for old in sorted(tickets, key=int)[:-MAX_REMEMBERED]:
        del tickets[old]
    request.session[SESSION_KEY] = tickets


def opened_here(request, access) -> bool:
    """Was ``access`` opened (its purpose stated) in this session?"""
    return str(access.pk) in request.session.get(SESSION_KEY, {})


def current_ticket(request, office, access) -> bytes:
    """The session's ticket for ``access``, renewed when it is near its end (:func:`opened_here` first)."""
    from ..custody.ticket import issue_ticket

    ticket = request.session[SESSION_KEY][str(access.pk)]
    if _expires_at(ticket) - office.now() > RENEW_BEFORE:
        return ticket.encode("ascii")
    renewed = issue_ticket(office, access)
    remember(request, access, renewed)
    return renewed
