"""Tickets: only an access that may decrypt gets one; a ticket verifies only as issued, with the office key,
within its lifetime; every issue is in the office audit log."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from evidence.keys import generate_office_key, load_office_signing_key


def _incident(world, frames, name="inc-1"):
    from backoffice.catalog.models import Incident

    world.record_incident(name, frames)
    world.ingest()
    return Incident.objects.get(incident_id=name)


def _log(world) -> list[tuple[str, dict]]:
    return [(d["event"], d["fields"]) for d in map(json.loads, world.log_path.read_text().splitlines())]


@pytest.fixture
def granted(world, frames_30):
    """A reviewer's playback access to a three-segment incident, and its ticket."""
    from backoffice.catalog.models import Access
    from backoffice.custody.ticket import issue_ticket

    inc = _incident(world, frames_30)
    access = Access.open(world.office, user=world.user("rita", "reviewer"), incident=inc, kind=Access.PLAYBACK,
                         purpose="Anzeige 12/2025")
    return access, issue_ticket(world.office, access)


def test_an_issued_ticket_verifies_and_names_the_access_and_every_video_segment(world, granted):
    from backoffice.custody.ticket import verify_ticket

    access, data = granted
    ticket = verify_ticket(data, world.office.signer.public, world.clock.now)
    assert (ticket.access, ticket.user, ticket.kind, ticket.purpose) == (access.pk, "rita", "playback", "Anzeige 12/2025")
    assert ticket.incident == "kod-07/inc-1" and ticket.site == "duisburg"
    assert ticket.stems == tuple(access.incident.segments.order_by("seq").values_list("stem", flat=True))
    assert len(ticket.stems) == 3 and ticket.grants(ticket.stems[0]) and not ticket.grants("kod-07-0000000099")
    assert ticket.expires_at - ticket.issued_at == timedelta(minutes=10)
    issued = [f for e, f in _log(world) if e == "ticket_issued"]
    assert issued == [{"access": access.pk, "by": "rita", "expires_at": issued[0]["expires_at"],
                       "incident": "kod-07/inc-1", "kind": "playback", "segments": 3}]


def _edited(data: bytes, **changes) -> bytes:
    doc = json.loads(data)
    doc.update(changes)
    return json.dumps(doc).encode()


def test_a_ticket_is_refused_when_edited_forged_expired_early_or_too_long(world, granted, tmp_path):
    from backoffice.custody.ticket import MAX_LIFETIME, TicketError, sign_ticket, verify_ticket

    access, data = granted
    public, now = world.office.signer.public, world.clock.now
    ticket = verify_ticket(data, public, now)
    generate_office_key(tmp_path)
    other_office = load_office_signing_key(tmp_path / "office.key")

    def signed(signer=world.office.signer, **changes):
        fields = dict(access=access.pk, user="rita", kind="playback", purpose="x", site="duisburg",
                      device_id="kod-07", incident_id="inc-1", stems=list(ticket.stems), issued_at=now,
                      expires_at=now + timedelta(minutes=10))
        fields.update(changes)
        return sign_ticket(signer, **fields)

    cases = [
        (_edited(data, purpose="private curiosity"), "signature"),
        (_edited(data, stems=list(ticket.stems) + ["kod-07-0000000099"]), "signature"),
        (signed(other_office), "signature"),
        (_edited(signed(other_office), signing_key_id=public.key_id), "signature"),
        (b"not json", "malformed"),
        (_edited(data, format="bodycam-ticket/0"), "malformed"),
        (signed(expires_at=now), "lifetime"),
        (signed(issued_at=now - timedelta(minutes=20), expires_at=now - timedelta(seconds=1)), "expired"),
        (signed(issued_at=now + timedelta(minutes=5), expires_at=now + timedelta(minutes=15)), "not_yet_valid"),
        (signed(expires_at=now + MAX_LIFETIME + timedelta(seconds=1)), "lifetime"),
        (signed(stems=["kod-08-0000000001"]), "malformed"),
        (signed(kind="page"), "malformed"),
    ]
    for bad, code in cases:
        with pytest.raises(TicketError) as refused:
            verify_ticket(bad, public, now)
        assert refused.value.code == code, (bad[:80], str(refused.value))
    with pytest.raises(TicketError, match="expired") as refused:  # the issued one, at the end of its life
        verify_ticket(data, public, ticket.expires_at)
    assert refused.value.code == "expired"
    assert verify_ticket(data, public, ticket.expires_at - timedelta(microseconds=1000)).access == access.pk


def test_the_signature_of_an_audit_line_or_tombstone_never_passes_as_a_ticket(world, granted):
    """The ticket's domain differs from the audit log's and the tombstones': the same office key signs all three."""
    import base64

    from backoffice.custody.ticket import TicketError, verify_ticket
    from base.canonical import canonical_json

    _, data = granted
    doc = json.loads(data)
    body = {k: v for k, v in doc.items() if k != "signature"}
    for domain in (b"bodycam-audit-v1\n", b"bodycam-tombstone-v1\n", b""):
        doc["signature"] = base64.b64encode(world.office.signer.sign(domain + canonical_json(body))).decode()
        with pytest.raises(TicketError, match="does not verify"):
            verify_ticket(json.dumps(doc), world.office.signer.public, world.clock.now)


def test_no_ticket_for_a_page_view_another_incidents_segment_or_the_data_protection_officer(world, frames_30):
    from backoffice.catalog.models import Access, RuleError
    from backoffice.custody.ticket import TicketError, issue_ticket

    inc = _incident(world, frames_30)
    other = _incident(world, frames_30, "inc-2")
    rita, dana = world.user("rita", "reviewer"), world.user("dana", "data-protection")
    page = Access.open(world.office, user=dana, incident=inc, kind=Access.PAGE)
    with pytest.raises(TicketError, match="only playback and export may decrypt"):
        issue_ticket(world.office, page)
    with pytest.raises(RuleError, match="may not watch or export"):  # so she never holds an access to issue for
        Access.open(world.office, user=dana, incident=inc, kind=Access.PLAYBACK, purpose="Kontrolle")
    playback = Access.open(world.office, user=rita, incident=inc, kind=Access.PLAYBACK, purpose="Anzeige")
    foreign = other.segments.first().stem
    with pytest.raises(TicketError, match="not a video segment of kod-07/inc-1"):
        issue_ticket(world.office, playback, stems=[foreign])
    with pytest.raises(TicketError, match="at most"):
        issue_ticket(world.office, playback, lifetime=timedelta(hours=2))
    assert [e for e, _ in _log(world) if e == "ticket_issued"] == []
