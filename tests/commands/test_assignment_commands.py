"""Officer check-out from the back office: `assign` and `unassign` are signed commands like any other, so an
unsigned, altered, stale or replayed assignment is refused and changes nothing."""

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from comms.commands import CommandActions, CommandHandler, CommandVerifier, canonical, sign_command
from evidence.keys import CommandPublicKey, device_key_id

NOW = 1_800_000_000.0


class Desk:
    """Records what reached the device's check-out, and every audit line."""

    def __init__(self, refuse=None):
        self.assignments = []
        self.audit = []
        self.refuse = refuse

    def assignment(self, officer, command_id):
        if self.refuse:
            return self.refuse
        self.assignments.append((officer, command_id))
        return None

    def append(self, event, **fields):
        self.audit.append((event, fields))


def handler_for(key, desk, clock, *, enabled=True):
    verifier = CommandVerifier("kod-07", CommandPublicKey(key.public_key(), device_key_id(key.public_key())),
                               pre_event_max_s=30, clock=lambda: clock[0], not_before=NOW - 100)
    actions = CommandActions(lambda *a: None, lambda s: None, lambda: None, lambda *a: None,
                             assignment=desk.assignment if enabled else None)
    return CommandHandler(verifier, actions, desk)


@pytest.fixture
def office_key():
    return Ed25519PrivateKey.generate()


@pytest.fixture
def clock():
    return [NOW]


def test_a_signed_assignment_reaches_the_device_and_is_audited(office_key, clock):
    desk = Desk()
    handler = handler_for(office_key, desk, clock)
    result = handler.handle(sign_command(office_key, "kod-07", "assign", {"officer": "ko-17"}, ts=NOW, command_id="a1"))
    assert result.ok and result.code == "accepted"
    result = handler.handle(sign_command(office_key, "kod-07", "unassign", ts=NOW, command_id="u1"))
    assert result.ok
    assert desk.assignments == [("ko-17", "a1"), (None, "u1")]
    assert [(e, f["cmd"]) for e, f in desk.audit] == [("command_received", "assign"), ("command_received", "unassign")]


def test_a_replayed_assignment_is_refused(office_key, clock):
    desk = Desk()
    handler = handler_for(office_key, desk, clock)
    payload = sign_command(office_key, "kod-07", "assign", {"officer": "ko-17"}, ts=NOW, command_id="once")
    assert handler.handle(payload).ok
    handler.handle(sign_command(office_key, "kod-07", "assign", {"officer": "ko-18"}, ts=NOW + 1, command_id="other"))
    clock[0] += 10
    again = handler.handle(payload)  # recorded on the wire and sent again, to give the camera back to ko-17
    assert not again.ok and again.code == "replayed"
    assert desk.assignments == [("ko-17", "once"), ("ko-18", "other")]
    clock[0] += 600
    assert handler.handle(payload).code == "stale"  # later still: too old, whatever the id memory holds
    assert len(desk.assignments) == 2


def signed_by_nobody(office_key):
    doc = json.loads(sign_command(office_key, "kod-07", "assign", {"officer": "ko-17"}, ts=NOW))
    del doc["sig"]
    return canonical(doc)


def altered(office_key):
    doc = json.loads(sign_command(office_key, "kod-07", "assign", {"officer": "ko-17"}, ts=NOW))
    doc["args"]["officer"] = "ko-66"
    return canonical(doc)


@pytest.mark.parametrize("make, code", [
    (signed_by_nobody, "malformed"),  # no signature at all
    (lambda k: sign_command(Ed25519PrivateKey.generate(), "kod-07", "assign", {"officer": "ko-17"}, ts=NOW),
     "bad_signature"),  # signed with a key that is not the back office's
    (altered, "bad_signature"),  # another officer put in after signing
    (lambda k: sign_command(k, "kod-07", "assign", {"officer": "Erika Mustermann"}, ts=NOW), "invalid_args"),
    (lambda k: sign_command(k, "kod-07", "assign", {}, ts=NOW), "invalid_args"),
    (lambda k: sign_command(k, "kod-07", "assign", {"officer": 17}, ts=NOW), "invalid_args"),
    (lambda k: sign_command(k, "kod-07", "unassign", {"officer": "ko-17"}, ts=NOW), "invalid_args"),
    (lambda k: sign_command(k, "kod-08", "assign", {"officer": "ko-17"}, ts=NOW), "wrong_device"),
    (lambda k: sign_command(k, "kod-07", "assign", {"officer": "ko-17"}, ts=NOW - 3600), "stale"),
])
def test_an_unsigned_or_bad_assignment_is_refused_and_changes_nothing(office_key, clock, make, code):
    desk = Desk()
    result = handler_for(office_key, desk, clock).handle(make(office_key))
    assert not result.ok and result.code == code, result
    assert desk.assignments == []
    assert [e for e, _ in desk.audit] == ["command_rejected"]


def test_without_check_out_or_when_the_device_refuses_the_command_says_so(office_key, clock):
    desk = Desk()
    result = handler_for(office_key, desk, clock, enabled=False).handle(
        sign_command(office_key, "kod-07", "assign", {"officer": "ko-17"}, ts=NOW))
    assert not result.ok and result.code == "refused" and "checkout.enabled" in result.reason
    desk = Desk(refuse="the audit log cannot be written")
    result = handler_for(office_key, desk, clock).handle(sign_command(office_key, "kod-07", "unassign", ts=NOW))
    assert not result.ok and result.code == "refused" and result.reason == "the audit log cannot be written"
    assert desk.assignments == []
