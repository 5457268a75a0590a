"""Remote commands: each bad-input class is rejected with a result and an audit line, nothing else moves."""

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from comms.commands import (
    MAX_COMMAND_BYTES,
    CommandActions,
    CommandHandler,
    CommandVerifier,
    RecorderRequest,
    canonical,
    sign_command,
)
from evidence.keys import CommandPublicKey, device_key_id

NOW = 1_800_000_000.0


def Verifier(public):
    """The device's view of the control room's key: the real key kind (evidence.keys), not a stand-in."""
    return CommandPublicKey(public, device_key_id(public))


class Recorded:
    """Every effect a command could have, recorded: the tests prove rejected ones have none."""

    def __init__(self):
        self.effects = []
        self.audit = []

    def actions(self, refuse_setting=None):
        return CommandActions(
            recorder=lambda request, command_id: self.effects.append(("recorder", request, command_id)),
            identify=lambda s: self.effects.append(("identify", s)),
            request_telemetry=lambda: self.effects.append(("telemetry",)),
            apply_setting=lambda sec, key, val, source: refuse_setting or self.effects.append(("set", sec, key, val)))

    def append(self, event, **fields):
        self.audit.append((event, fields))


@pytest.fixture
def keys():
    return Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()


@pytest.fixture
def setup(keys):
    good, _ = keys
    rec = Recorded()
    clock = [NOW]
    verifier = CommandVerifier("kod-07", Verifier(good.public_key()), pre_event_max_s=30, clock=lambda: clock[0],
                               not_before=NOW - 100)
    return CommandHandler(verifier, rec.actions(), rec), rec, clock


def cmd(key, name, args=None, device="kod-07", ts=NOW, cid=None):
    return sign_command(key, device, name, args, ts=ts, command_id=cid)


@pytest.mark.parametrize("name, args, effect", [
    ("start", {}, ("recorder", RecorderRequest.START, "c1")),
    ("stop", {}, ("recorder", RecorderRequest.STOP, "c1")),
    ("mirror", {"on": True}, ("recorder", RecorderRequest.MIRROR_ON, "c1")),
    ("mirror", {"on": False}, ("recorder", RecorderRequest.MIRROR_OFF, "c1")),
    ("identify", {"seconds": 5}, ("identify", 5)),
    ("request-telemetry", {}, ("telemetry",)),
    ("set", {"key": "recording.pre_event_seconds", "value": 10}, ("set", "recording", "pre_event_seconds", 10)),
    ("set", {"key": "display.language", "value": "en"}, ("set", "display", "language", "en")),
])
def test_valid_commands_round_trip(setup, keys, name, args, effect):
    handler, rec, _ = setup
    result = handler.handle(cmd(keys[0], name, args, cid="c1"))
    assert result.ok and result.id == "c1" and result.code == "accepted"
    assert rec.effects == [effect]
    assert rec.audit[-1][0] == "command_received"
    assert json.loads(result.to_json())["ok"] is True


def tamper(payload: bytes, **changes) -> bytes:
    doc = json.loads(payload)
    doc.update(changes)
    return canonical(doc)


@pytest.mark.parametrize("make, code", [
    (lambda k: b"{not json", "malformed"),
    (lambda k: b"[1, 2]", "malformed"),
    (lambda k: b"\xff\xfe", "malformed"),
    (lambda k: b" " * (MAX_COMMAND_BYTES + 1), "too_large"),
    (lambda k: cmd(k[0], "format-disk"), "unknown_command"),
    (lambda k: cmd(k[0], "delete", {"stem": "x"}), "unknown_command"),
    (lambda k: cmd(k[1], "start"), "bad_signature"),  # signed with the wrong key
    (lambda k: tamper(cmd(k[0], "stop"), cmd="start"), "bad_signature"),  # altered after signing
    (lambda k: tamper(cmd(k[0], "start"), sig="@@@"), "bad_signature"),
    (lambda k: cmd(k[0], "start", device="kod-08"), "wrong_device"),
    (lambda k: cmd(k[0], "start", ts=NOW - 600), "stale"),
    (lambda k: cmd(k[0], "start", ts=NOW + 600), "stale"),
    (lambda k: tamper(cmd(k[0], "start"), v=2), "unsupported_version"),
    (lambda k: tamper(cmd(k[0], "start"), extra=1), "malformed"),
    (lambda k: cmd(k[0], "mirror", {"on": "yes"}), "invalid_args"),
    (lambda k: cmd(k[0], "identify", {"seconds": 3600}), "invalid_args"),
    (lambda k: cmd(k[0], "start", {"force": True}), "invalid_args"),
    (lambda k: cmd(k[0], "set", {"key": "recording.pre_event_seconds", "value": 120}), "invalid_args"),  # above policy
    (lambda k: cmd(k[0], "set", {"key": "recording.pre_event_seconds", "value": -1}), "invalid_args"),
    (lambda k: cmd(k[0], "set", {"key": "evidence.recipients", "value": []}), "invalid_args"),  # not whitelisted
    (lambda k: cmd(k[0], "set", {"key": "display.language", "value": "fr"}), "invalid_args"),
])
def test_each_bad_input_class_is_rejected_and_changes_nothing(setup, keys, make, code):
    handler, rec, _ = setup
    result = handler.handle(make(keys))
    assert not result.ok and result.code == code, result
    assert rec.effects == []
    assert rec.audit == [("command_rejected", rec.audit[0][1])] and rec.audit[0][1]["code"] == code


def test_a_replayed_command_is_rejected(setup, keys):
    handler, rec, clock = setup
    payload = cmd(keys[0], "start", cid="once")
    assert handler.handle(payload).ok
    clock[0] += 5
    again = handler.handle(payload)
    assert not again.ok and again.code == "replayed" and len(rec.effects) == 1


def test_a_command_from_before_the_agent_started_is_rejected(keys):
    rec = Recorded()
    verifier = CommandVerifier("kod-07", Verifier(keys[0].public_key()), pre_event_max_s=30, clock=lambda: NOW,
                               not_before=NOW)
    result = CommandHandler(verifier, rec.actions(), rec).handle(cmd(keys[0], "start", ts=NOW - 30))
    assert result.code == "stale" and "before this agent started" in result.reason and not rec.effects


def test_a_setting_the_runtime_refuses_is_reported(keys):
    rec = Recorded()
    verifier = CommandVerifier("kod-07", Verifier(keys[0].public_key()), pre_event_max_s=30, clock=lambda: NOW,
                               not_before=0)
    handler = CommandHandler(verifier, rec.actions(refuse_setting="display is not fitted"), rec)
    result = handler.handle(cmd(keys[0], "set", {"key": "display.language", "value": "de"}))
    assert not result.ok and result.code == "refused" and result.reason == "display is not fitted"


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=4), max_leaves=12)


@pytest.mark.system  # 1500 hostile payloads (~7 s)
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.one_of(
    st.binary(max_size=600),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"v": json_values, "id": json_values, "ts": json_values, "device": json_values,
                           "cmd": st.sampled_from(["start", "stop", "set", "mirror", "identify", "x"]) | json_values,
                           "args": json_values, "sig": json_values}).map(lambda d: json.dumps(d).encode()),
))
def test_thousands_of_hostile_payloads_never_crash_and_never_act(setup, payload):
    handler, rec, _ = setup
    result = handler.handle(payload)
    assert not result.ok  # none of these carries a valid signature
    assert rec.effects == []
    rec.audit.clear()


finite_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=st.dictionaries(st.sampled_from(["on", "seconds", "key", "value", "x"]) | st.text(max_size=10),
                            finite_json, max_size=3),
       name=st.sampled_from(["identify", "mirror", "set", "start"]))
def test_signed_but_ill_typed_arguments_are_rejected_or_exactly_valid(setup, keys, name, args):
    handler, rec, _ = setup
    result = handler.handle(cmd(keys[0], name, args))
    if result.ok:
        assert len(rec.effects) == 1
    else:
        assert result.code == "invalid_args" and rec.effects == []
    rec.effects.clear()


def test_signature_is_domain_separated(keys):
    payload = json.loads(cmd(keys[0], "start"))
    body = canonical({k: v for k, v in payload.items() if k != "sig"})
    signature = base64.b64decode(payload["sig"])
    with pytest.raises(Exception):
        keys[0].public_key().verify(signature, body)  # without the domain prefix the signature is useless


FORGED_LINE = "x\nCRITICAL agent.runtime: evidence spool wiped"


@pytest.mark.parametrize("make", [
    lambda k: canonical({**json.loads(cmd(k[0], "start")), FORGED_LINE: 1}),  # an unknown field's name
    lambda k: cmd(k[0], "start", {FORGED_LINE: True}),  # an unknown argument's name (signed)
    lambda k: cmd(k[0], "start", device=FORGED_LINE),  # another device's name
])
def test_peer_supplied_names_cannot_write_a_log_line_of_their_own(setup, keys, caplog, make):
    handler, _, _ = setup
    with caplog.at_level("DEBUG"):
        result = handler.handle(make(keys))
    assert not result.ok and caplog.records
    for record in caplog.records:
        assert "\n" not in record.getMessage(), record.getMessage()


@pytest.mark.parametrize("alter, why", [
    # a reader taking the first 'cmd' sees "stop"; a last-wins parser would run the signed "set"
    (lambda p: p.replace(b'"cmd":"set"', b'"cmd":"stop","cmd":"set"'), "repeats the field 'cmd'"),
    (lambda p: p.replace(b'"key":', b'"key":"telemetry.interval_seconds","key":'), "repeats the field 'key'"),
    (lambda p: p.decode().encode("utf-16"), "byte-order mark"),
    (lambda p: p.decode().encode("utf-16-le"), "UTF-16"),
    (lambda p: p.decode().encode("utf-32"), "byte-order mark"),
    (lambda p: b"\xef\xbb\xbf" + p, "byte-order mark"),
    (lambda p: b"\xc3" + p, "not UTF-8"),
    (lambda p: json.dumps(json.loads(p), indent=2, sort_keys=True).encode(), "canonical form"),
    (lambda p: p + b"\n", "canonical form"),
    (lambda p: json.dumps(json.loads(p)).encode(), "canonical form"),  # keys in signing order, with spaces
    (lambda p: p.replace(b'"cmd":"set"', b'"cmd":"s\\u0065t"'), "canonical form"),  # an escape where none is due
    (lambda p: p.replace(b'"ts":1800000000.0', b'"ts":1.8e9'), "canonical form"),  # another spelling of the number
])
def test_only_the_exact_signed_bytes_are_accepted(setup, keys, alter, why):
    handler, rec, _ = setup
    signed = cmd(keys[0], "set", {"key": "display.language", "value": "en"})
    payload = alter(signed)
    assert payload != signed
    result = handler.handle(payload)
    assert not result.ok and result.code == "malformed" and why in result.reason, result
    assert rec.effects == []
    assert handler.handle(signed).ok  # the bytes as signed still run


@pytest.mark.parametrize("before", [0.001, 0.5, 0.999, 30])
def test_a_command_issued_any_time_before_the_agent_started_is_refused(keys, before):
    rec = Recorded()
    verifier = CommandVerifier("kod-07", Verifier(keys[0].public_key()), pre_event_max_s=30, clock=lambda: NOW + 1,
                               not_before=NOW)
    result = CommandHandler(verifier, rec.actions(), rec).handle(cmd(keys[0], "start", ts=NOW - before))
    assert result.code == "stale" and "before this agent started" in result.reason and not rec.effects


def test_the_start_time_is_compared_at_the_grain_of_ts(keys):
    """'ts' has whole milliseconds, cut down: a command stamped at or after the start runs; one signed in
    the start's millisecond but after it is refused too (the device has not even subscribed by then)."""
    rec = Recorded()
    verifier = CommandVerifier("kod-07", Verifier(keys[0].public_key()), pre_event_max_s=30, clock=lambda: NOW + 1,
                               not_before=NOW)
    assert CommandHandler(verifier, rec.actions(), rec).handle(cmd(keys[0], "start", ts=NOW)).ok
    verifier.not_before = NOW + 0.0004  # the device's clock has a finer grain than 'ts'
    late = CommandHandler(verifier, rec.actions(), rec).handle(cmd(keys[0], "stop", ts=NOW + 0.0009))
    assert late.code == "stale" and len(rec.effects) == 1


def test_the_issue_time_is_cut_to_the_millisecond_never_rounded_up(keys):
    """A command signed before the start must never carry a time stamp after it."""
    assert json.loads(cmd(keys[0], "start", ts=NOW + 0.0009))["ts"] == NOW
    assert json.loads(cmd(keys[0], "start", ts=NOW + 0.0123456))["ts"] == NOW + 0.012


def test_only_the_canonical_spelling_of_the_signature_is_accepted(setup, keys):
    """Base64 has spare bits in its last character: a second spelling of the same signature is refused."""
    handler, rec, _ = setup
    signed = cmd(keys[0], "start")
    sig = json.loads(signed)["sig"]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = sig.rstrip("=")[-1]
    twin = sig.rstrip("=")[:-1] + alphabet[alphabet.index(last) | 1] + "=="  # same decoded bytes
    assert twin != sig and base64.b64decode(twin) == base64.b64decode(sig)
    result = handler.handle(signed.replace(sig.encode(), twin.encode()))
    assert not result.ok and result.code == "bad_signature" and "canonical base64" in result.reason
    assert rec.effects == []
