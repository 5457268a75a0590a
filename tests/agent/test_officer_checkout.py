"""Officer check-out in the running agent: a badge on the (fake) PN532 and a signed command assign the officer,
replayed and unsigned assignments are refused, the manifests and the audit lines of the shift carry the
officer, the dock ends the shift, and a restart keeps the assignment."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import ui.nfc
from agent import config
from agent.recorder import Action, Trigger
from agent.doctor_cli import describe_status
from agent.runtime import Agent
from agent.status import StatusDocument
from comms.commands import sign_command
from comms.telemetry import build_telemetry
from evidence import audit
from evidence.audit import verify_log
from evidence.keys import generate_command_key, load_signing_key
from evidence.seal import Manifest
from tests.support import device_config, wait_for

from tests.ui.fake_pn532 import FakePn532Bus

UID = bytes.fromhex("04a1b2c3d4e5f6")
DOCK_PIN = 5
SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"


@pytest.fixture
def setup(tmp_path, monkeypatch):
    (tmp_path / "badges.toml").write_text('[badges]\n"04a1b2c3d4e5f6" = "ko-17"\n')
    pair = generate_command_key(tmp_path)  # the back office's command key; the device holds command.pub
    office_key = load_signing_key(pair.key_path).private
    cfg = device_config(tmp_path, checkout={"enabled": True, "badges": str(tmp_path / "badges.toml"),
                                            "nfc_reader": "pn532", "dock_seconds": 1.0},
                        controls={"pin_factory": "mock", "dock_pin": DOCK_PIN},
                        commands={"public_key": str(pair.pub_path)},
                        recording={"pre_event_seconds": 1.0, "segment_seconds": 2.0})
    bus = FakePn532Bus(None)
    real_open = ui.nfc.open_pn532
    monkeypatch.setattr(ui.nfc, "open_pn532", lambda port, address: real_open(port, address, bus=bus))
    return cfg, bus, office_key


def tend_until(agent, predicate, timeout=15.0):
    """The main thread's loop, as run_agent drives it, until ``predicate`` holds."""
    return wait_for(lambda: agent.supervise() is None and predicate(), timeout)


def record(agent):
    """One incident of at least one whole segment, sealed."""
    before, emitted = agent.sealer.sealed, agent.recorder_thread.status.segments_emitted
    agent.trigger(Trigger(Action.START, "test"))
    assert wait_for(lambda: agent.recorder_thread.status.segments_emitted > emitted, 20)
    agent.trigger(Trigger(Action.STOP, "test"))
    assert wait_for(lambda: not agent.is_recording() and agent.sealer.sealed > before, 20)
    assert wait_for(lambda: agent.sealer.sealed == agent.recorder_thread.status.segments_emitted, 20)  # all of it
    assert agent.stage.audit_writer.flush()  # and its audit lines written, before the next change


def manifests(cfg):
    found = [Manifest.parse(p.read_bytes()) for p in Path(cfg.storage.spool_dir).glob("*.manifest.json")]
    return sorted(found, key=lambda m: m.seq)


def audit_lines(cfg):
    return [json.loads(line) for line in Path(cfg.storage.audit_log).read_bytes().splitlines()]


def test_badge_command_dock_and_what_the_evidence_says(setup):
    cfg, bus, office_key = setup
    agent = Agent(cfg)
    agent.start()
    handler = agent._command_handler()  # what the broker channel runs for bodycam/<site>/<device>/cmd
    try:
        assert wait_for(lambda: agent.recorder_thread.status.frames_seen > 5)
        view = agent._view()
        assert (view.officer, view.officer_note) == (None, "unassigned")  # "nicht zugeordnet"

        bus.uid = UID  # the officer holds the badge to the reader
        assert tend_until(agent, lambda: agent.shift.officer == "ko-17")
        bus.uid = None
        assert agent._view().officer == "ko-17" and agent.shift.status().via == "badge"
        record(agent)
        badge_incident = manifests(cfg)[-1].incident_id

        signed = sign_command(office_key, cfg.device.id, "assign", {"officer": "ko-23"}, command_id="shift-2")
        assert handler.handle(signed).ok and agent.shift.officer == "ko-23"
        assert handler.handle(sign_command(office_key, cfg.device.id, "assign", {"officer": "ko-17"},
                                           command_id="shift-3")).ok
        replay = handler.handle(signed)  # the recorded assignment of ko-23, sent again
        forged = handler.handle(sign_command(Ed25519PrivateKey.generate(), cfg.device.id, "assign",
                                             {"officer": "ko-66"}))
        assert (replay.code, forged.code) == ("replayed", "bad_signature")
        assert agent.shift.officer == "ko-17"

        status = agent.refresh_alerts()
        telemetry = build_telemetry(status.as_json(), clock_sync="unsynchronized", alerts=[])
        jsonschema.Draft202012Validator(json.loads((SCHEMAS / "telemetry.schema.json").read_text())).validate(telemetry)
        assert telemetry["assignment"] == {**telemetry["assignment"], "officer": "ko-17", "via": "command",
                                           "docked": False}

        agent._pins.pin(DOCK_PIN).drive_high()  # back in the dock at the end of the shift
        assert tend_until(agent, lambda: agent.shift.officer is None)
        assert agent._view().officer_note == "unassigned" and agent.refresh_alerts().checkout.docked
        record(agent)  # an unassigned device still records
        docked_incident = manifests(cfg)[-1].incident_id
    finally:
        agent.stop()

    by_incident = {}
    for m in manifests(cfg):
        by_incident.setdefault(m.incident_id, set()).add(m.officer)
    assert by_incident[badge_incident] == {"ko-17"}  # every segment of the incident
    assert by_incident[docked_incident] == {None}

    key = load_signing_key(cfg.evidence.device_key).private
    assert verify_log(cfg.storage.audit_log, key.public_key()).ok
    lines = audit_lines(cfg)
    changes = [(e["event"], e["fields"]["officer"], e["fields"]["via"]) for e in lines
               if e["event"] in (audit.OFFICER_ASSIGNED, audit.OFFICER_UNASSIGNED)]
    assert changes == [(audit.OFFICER_ASSIGNED, "ko-17", "badge"), (audit.OFFICER_ASSIGNED, "ko-23", "command"),
                       (audit.OFFICER_ASSIGNED, "ko-17", "command"), (audit.OFFICER_UNASSIGNED, "ko-17", "dock")]
    officer = None
    for e in lines:  # every line written while assigned names the officer, and no other line does
        if e["event"] == audit.OFFICER_ASSIGNED:
            officer = e["fields"]["officer"]
        elif e["event"] == audit.OFFICER_UNASSIGNED:
            officer = None
        else:
            assert e["fields"].get("officer") == officer, e
    sealed_with = {e["fields"]["incident_id"]: e["fields"].get("officer") for e in lines
                   if e["event"] == audit.SEGMENT_SEALED}
    assert sealed_with[badge_incident] == "ko-17" and sealed_with[docked_incident] is None


def test_a_restart_keeps_the_officer(setup):
    cfg, bus, office_key = setup
    agent = Agent(cfg)
    agent.start()
    try:
        bus.uid = UID
        assert tend_until(agent, lambda: agent.shift.officer == "ko-17")
    finally:
        agent.stop()
    agent = Agent(cfg)  # a crash or a flat battery in the middle of the shift
    agent.start()
    try:
        assert agent.shift.officer == "ko-17" and agent.shift.status().via == "restored"
        assert agent._view().officer == "ko-17"
        doc = agent.refresh_alerts()  # what the status file gets, and `bodycam status` reads back
        assert StatusDocument.from_json(json.loads(json.dumps(doc.as_json()))).checkout == doc.checkout
        assert any(line.startswith("officer: ko-17 (by restored, ") for line in describe_status(doc, doc.time))
    finally:
        agent.stop()


def test_without_check_out_nothing_changes(tmp_path):
    cfg = device_config(tmp_path, controls={"pin_factory": "mock"})
    assert not cfg.checkout.enabled
    agent = Agent(cfg)
    agent.start()
    try:
        view = agent._view()
        assert (view.officer, view.officer_note) == (None, None)  # the standby screen it always had
        assert agent.status().checkout is None
        assert build_telemetry(agent.status().as_json(), clock_sync="x", alerts=[])["assignment"] is None
    finally:
        agent.stop()
