"""A flood of refused commands writes a bounded number of signed audit lines; the first is never dropped."""

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from evidence.audit import AuditLog, verify_log
from comms.commands import CommandActions, CommandHandler, CommandVerifier, canonical, sign_command
from comms.refusals import RefusalLog
from test_commands import Verifier  # one helper for both command test files

NOW = 1_800_000_000.0
QUIET, EVERY = 60.0, 300.0


JUNK = [  # no key needed for any of these
    b"{oops",
    b"x" * 5000,
    canonical({"v": 1, "id": "j", "ts": NOW, "device": "kod-99", "cmd": "start", "args": {}, "sig": "AA=="}),
]
CODES = ["malformed", "too_large", "wrong_device"]


@pytest.fixture
def device(tmp_path):
    command_key, device_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    log = AuditLog(tmp_path / "audit.log", device_key)
    effects = []
    verifier = CommandVerifier("kod-07", Verifier(command_key.public_key()), pre_event_max_s=30,
                               clock=lambda: NOW, not_before=NOW - 100)
    actions = CommandActions(recorder=lambda *request: effects.append(request), identify=effects.append,
                             request_telemetry=lambda: None, apply_setting=lambda *a: None)
    clock = [0.0]
    handler = CommandHandler(verifier, actions, log, refusals=RefusalLog(
        log, quiet_s=QUIET, summary_every_s=EVERY, clock=lambda: clock[0], wall=lambda: NOW + clock[0]))
    yield handler, log, clock, command_key, device_key, effects
    log.close()


def lines(log):
    return [json.loads(line) for line in open(log.path)]


def flood(handler, clock, count, step):
    for i in range(count):
        result = handler.handle(JUNK[i % 3])
        assert not result.ok and result.code == CODES[i % 3]  # every one still gets its answer on cmd/result
        clock[0] += step


def test_a_thousand_junk_commands_write_a_bounded_number_of_audit_lines(device):
    handler, log, clock, _, device_key, effects = device
    before = len(lines(log))
    flood(handler, clock, 1000, step=0.02)  # 20 s of junk
    written = lines(log)[before:]
    assert len(written) == 1, f"{len(written)} audit lines for 1000 junk commands"
    first = written[0]
    assert first["event"] == "command_rejected" and first["fields"]["code"] == "malformed"
    assert first["fields"]["reason"] == "command is not valid JSON"
    handler.tick()
    assert len(lines(log)) == before + 1  # the burst goes on until it has been quiet for QUIET
    clock[0] += QUIET
    handler.tick()
    summary = lines(log)[-1]
    assert summary["event"] == "command_rejections"
    assert summary["fields"]["counts"] == {"malformed": 333, "too_large": 333, "wrong_device": 333}
    assert summary["fields"]["total"] == 999 and summary["fields"]["ended"] is True
    assert summary["fields"]["since"] == NOW + 0.02 and summary["fields"]["until"] == pytest.approx(NOW + 19.98)
    handler.tick()
    assert len(lines(log)) == before + 2
    assert verify_log(log.path, device_key.public_key()).ok  # signed, chained audit lines like any other
    assert effects == []


def test_a_long_flood_is_summarised_periodically_and_a_new_burst_is_written_in_full(device):
    handler, log, clock, *_ = device
    before = len(lines(log))
    flood(handler, clock, 1000, step=1.0)  # 1000 s of junk, one a second
    written = lines(log)[before:]
    assert [w["event"] for w in written] == ["command_rejected"] + ["command_rejections"] * 3
    assert [w["fields"]["ended"] for w in written[1:]] == [False] * 3
    clock[0] += QUIET
    handler.tick()
    tail = lines(log)[-1]
    assert tail["event"] == "command_rejections" and tail["fields"]["ended"] is True
    assert sum(w["fields"]["total"] for w in lines(log)[before + 1:]) == 999  # every refusal counted once
    handler.handle(JUNK[2])  # a new burst: its first refusal is written in full, never dropped
    assert lines(log)[-1]["event"] == "command_rejected" and lines(log)[-1]["fields"]["code"] == "wrong_device"


def test_an_authenticated_command_ends_the_burst_first(device):
    handler, log, clock, command_key, _, effects = device
    before = len(lines(log))
    flood(handler, clock, 10, step=0.1)
    assert handler.handle(sign_command(command_key, "kod-07", "start", ts=NOW)).ok
    handler.close()
    events = [(w["event"], w["fields"].get("total")) for w in lines(log)[before:]]
    assert events == [("command_rejected", None), ("command_rejections", 9), ("command_received", None)]
    assert len(effects) == 1
