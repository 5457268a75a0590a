"""Tickets: an access the catalog granted, signed with the office key, that the custodian decrypts for.

The web app (or a command) opens an :class:`~backoffice.catalog.models.Access` -- which checks the
person's role and records the stated purpose -- and then issues a ticket for it. The custodian holds
no catalog and no database: it trusts exactly what the ticket says, because only holders of the office
key can sign one, and it opens only the segments the ticket names, only until it expires.

Format: ``canonical(document) + "\\n"`` (:mod:`base.canonical`) with the Ed25519 signature inside, in
``"signature"``, over ``DOMAIN + canonical(document without "signature")``. The domain keeps a ticket
signature from ever passing as an audit line or a tombstone signed with the same office key.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from base.canonical import canonical_json
from base.errors import BodycamError
from base.ids import is_id, is_stem
from base.utctime import iso_utc, parse_iso_utc

from ..catalog import office as events

FORMAT = "bodycam-ticket/1"
DOMAIN = b"bodycam-ticket-v1\n"
#: How long a ticket is good for: long enough to start watching or exporting, short enough that a
#: leaked one is soon worthless. A viewer who keeps watching gets a new ticket for the same access.
LIFETIME = timedelta(minutes=10)
#: The custodian refuses tickets that claim to live longer (a misconfigured or tampered issuer).
MAX_LIFETIME = timedelta(hours=1)
#: Clock difference tolerated between the issuer and the custodian (issued "in the future").
CLOCK_SKEW = timedelta(seconds=60)
#: The access kinds that may decrypt (an incident's page view may not).
KINDS = ("playback", "export")
MAX_TICKET_BYTES = 64 * 1024

_FIELDS = {"format", "access", "user", "kind", "purpose", "site", "device_id", "incident_id", "stems",
           "issued_at", "expires_at", "signing_key_id", "signature"}


class TicketError(BodycamError):
    """A ticket is malformed, forged, expired, or does not grant what was asked. ``code`` names which."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Ticket:
    """A verified ticket (only :func:`verify_ticket` makes one from bytes)."""

    access: int
    user: str
    kind: str
    purpose: str
    site: str
    device_id: str
    incident_id: str
    stems: tuple[str, ...]
    issued_at: datetime
    expires_at: datetime
    signing_key_id: str

    @property
    def incident(self) -> str:
        """``DEVICE/INCIDENT``, as the office audit log names an incident."""
        return f"{self.device_id}/{self.incident_id}"

    def grants(self, stem: str) -> bool:
        return stem in self.stems


def sign_ticket(signer, *, access: int, user: str, kind: str, purpose: str, site: str, device_id: str,
                incident_id: str, stems, issued_at: datetime, expires_at: datetime) -> bytes:
    """The ticket's bytes, signed with ``signer`` (the office key). No rule is checked here: see :func:`issue_ticket`."""
    doc = {"format": FORMAT, "access": access, "user": user, "kind": kind, "purpose": purpose, "site": site,
           "device_id": device_id, "incident_id": incident_id, "stems": list(stems),
           "issued_at": iso_utc(issued_at.timestamp()), "expires_at": iso_utc(expires_at.timestamp()),
           "signing_key_id": signer.key_id}
    signature = base64.b64encode(signer.sign(DOMAIN + canonical_json(doc))).decode("ascii")
    return canonical_json({**doc, "signature": signature}) + b"\n"


def issue_ticket(office, access, *, stems=None, lifetime: timedelta = LIFETIME) -> bytes:
    """A ticket for an access that :meth:`Access.open <backoffice.catalog.models.Access.open>` granted.

    ``stems``: the segments it may open (default: every segment of the incident that holds video). The
    issue is recorded in the office audit log (``ticket_issued``). Refused for an access that may not
    decrypt (a page view), a stem of another incident, and a lifetime beyond :data:`MAX_LIFETIME`.
    """
    if access.kind not in KINDS:
        raise TicketError(f"access {access.pk} is a {access.kind!r} access; only {' and '.join(KINDS)} may decrypt",
                          "kind")
    if not timedelta(0) < lifetime <= MAX_LIFETIME:
        raise TicketError(f"a ticket lives at most {MAX_LIFETIME}", "lifetime")
    incident = access.incident
    video = list(incident.segments.filter(end_marker=False).order_by("seq").values_list("stem", flat=True))
    if stems is None:
        stems = video
    else:
        stems = list(stems)
        foreign = sorted(set(stems) - set(video))
        if foreign:
            raise TicketError(f"{', '.join(foreign)[:200]} {'is' if len(foreign) == 1 else 'are'} not a video "
                              f"segment of {incident}", "stem")
    now = office.now()
    data = sign_ticket(office.signer, access=access.pk, user=access.user.username, kind=access.kind,
                       purpose=access.purpose, site=incident.site.code, device_id=incident.device.device_id,
                       incident_id=incident.incident_id, stems=stems, issued_at=now, expires_at=now + lifetime)
    office.record(events.TICKET_ISSUED, access=access.pk, incident=str(incident), kind=access.kind,
                  by=access.user.username, segments=len(stems), expires_at=iso_utc((now + lifetime).timestamp()))
    return data


def verify_ticket(data: bytes | str, office_public_key, now: datetime) -> Ticket:
    """Parse and check a ticket: form, signature (office key), validity at ``now``. Raises :class:`TicketError`."""
    if isinstance(data, str):
        data = data.encode("utf-8", errors="replace")
    if len(data) > MAX_TICKET_BYTES:
        raise TicketError(f"the ticket is larger than {MAX_TICKET_BYTES} bytes", "malformed")
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise TicketError("the ticket is not JSON", "malformed") from None
    if not isinstance(doc, dict) or set(doc) != _FIELDS or doc.get("format") != FORMAT:
        raise TicketError(f"not a {FORMAT} ticket (wrong fields or format)", "malformed")
    body = {k: v for k, v in doc.items() if k != "signature"}
    try:
        signature = base64.b64decode(doc["signature"], validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise TicketError("the ticket's signature is not base64", "malformed") from None
    if doc["signing_key_id"] != office_public_key.key_id or not office_public_key.verify(
            signature, DOMAIN + canonical_json(body)):
        raise TicketError(f"the ticket's signature does not verify with the office key {office_public_key.key_id} "
                          "(forged, edited, or signed by another key)", "signature")
    ticket = _parse(doc)
    if ticket.expires_at - ticket.issued_at > MAX_LIFETIME or ticket.expires_at <= ticket.issued_at:
        raise TicketError(f"the ticket claims to live from {doc['issued_at']} to {doc['expires_at']}; at most "
                          f"{MAX_LIFETIME} is accepted", "lifetime")
    if now < ticket.issued_at - CLOCK_SKEW:
        raise TicketError(f"the ticket was issued at {doc['issued_at']}, in the future of this clock "
                          f"({iso_utc(now.timestamp())}); check the servers' time synchronisation", "not_yet_valid")
    if now >= ticket.expires_at:
        raise TicketError(f"the ticket expired at {doc['expires_at']} (now {iso_utc(now.timestamp())}); "
                          "ask for a new one", "expired")
    return ticket


def _parse(doc: dict) -> Ticket:
    """The signed fields as a :class:`Ticket`; a signed but malformed field is still refused."""
    def text(key):
        value = doc[key]
        if not isinstance(value, str) or len(value) > 4096:
            raise TicketError(f"the ticket's {key} is not a text", "malformed")
        return value

    access, stems = doc["access"], doc["stems"]
    if not isinstance(access, int) or isinstance(access, bool) or access < 1:
        raise TicketError("the ticket's access id is not a positive number", "malformed")
    if doc["kind"] not in KINDS:
        raise TicketError(f"the ticket's kind {str(doc['kind'])[:20]!r} may not decrypt", "malformed")
    if not (is_id(doc["site"]) and is_id(doc["device_id"])):
        raise TicketError("the ticket's site or device is not a valid id", "malformed")
    if not (isinstance(stems, list) and all(is_stem(s) and s.startswith(doc["device_id"] + "-") for s in stems)):
        raise TicketError("the ticket's stems are not segments of its device", "malformed")
    try:
        issued, expires = (datetime.fromtimestamp(parse_iso_utc(text(k)), timezone.utc)
                           for k in ("issued_at", "expires_at"))
    except ValueError:
        raise TicketError("the ticket's times are not ISO 8601 UTC", "malformed") from None
    incident_id = text("incident_id")
    if not incident_id:
        raise TicketError("the ticket names no incident", "malformed")
    return Ticket(access=access, user=text("user"), kind=doc["kind"], purpose=text("purpose"), site=doc["site"],
                  device_id=doc["device_id"], incident_id=incident_id, stems=tuple(stems), issued_at=issued,
                  expires_at=expires, signing_key_id=doc["signing_key_id"])
