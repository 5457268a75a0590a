"""Telemetry, events and command results from a running agent validate against the published schemas."""

import json
from pathlib import Path

import jsonschema
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.alerts import derive_alerts
from agent.bridge import recording_event
from agent.recorder import Action, Trigger
from agent.runtime import Agent
from agent.sensors import BatteryReading
from comms.commands import CommandActions, CommandHandler, CommandVerifier, sign_command
from comms.events import EventTracker, RecordingEvent
from comms.telemetry import build_telemetry, significant
from comms.uplink import UplinkStatus
from tests.support import device_config, wait_for

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"


def validator(name):
    schema = json.loads((SCHEMAS / name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture
def running_agent(tmp_path):
    cfg = device_config(tmp_path, recording={"pre_event_seconds": 1.0})
    agent = Agent(cfg)
    tracker = EventTracker(cfg.device.id, cfg.device.site)
    events = []
    agent.start()

    def to_tracker(event):  # as the runtime feeds its broker channel
        change = recording_event(event)
        if change is not None:
            events.extend(tracker.on_recorder_event(change))

    agent.recorder_thread.recorder.subscribe(to_tracker)
    yield agent, tracker, events
    agent.stop()


REFUSED = ("the broker refused our publish with reason 0x87 (not authorized): the broker's ACL or this device's "
           "certificate does not match its topics")


def test_telemetry_of_a_running_agent_validates_in_every_state(running_agent):
    agent, _, _ = running_agent
    check = validator("telemetry.schema.json")
    assert wait_for(lambda: agent.recorder_thread.status.frames_seen > 10 and agent.monitor.snapshot)
    status = agent.status().as_json()
    standby = build_telemetry(status, clock_sync="unsynchronized", alerts=[a.as_dict() for a in derive_alerts(status)])
    check.validate(standby)
    assert standby["recorder"]["state"] == "standby" and standby["battery"] is None  # no gauge: unknown
    seq, digest = agent.stage.sealer.chain.head()
    assert standby["chain_head"] == {"seq": seq, "manifest_sha256": digest}  # for `bodycam verify --head`
    agent.trigger(Trigger(Action.START, "test"))
    assert wait_for(lambda: agent.recorder_thread.status.state.recording)
    status, upload = agent.status().as_json(), UplinkStatus(state="refused", link_up=True, fault=REFUSED).as_dict()
    alerts = derive_alerts(status, battery_percent=9.0, cpu_temperature_c=83.0, throttling=["throttled"],
                           upload=upload)
    recording = build_telemetry(status, clock_sync="ntp-synchronized", alerts=[a.as_dict() for a in alerts],
                                battery=BatteryReading(9.0, 3.4), cpu_temperature_c=83.0, throttling=["throttled"],
                                link={"interface": "wlan0", "quality": 40.0, "signal_dbm": -70.0}, upload=upload)
    check.validate(recording)
    assert recording["recorder"]["incident_id"] and recording["recorder"]["recording_since"]
    codes = [a["code"] for a in recording["alerts"]]
    assert codes == ["low_battery", "overheating", "upload_failing"]  # critical first, then by code
    assert recording["alerts"][2]["text"] == REFUSED
    assert significant(standby, recording) and not significant(recording, recording)
    with pytest.raises(jsonschema.ValidationError):
        check.validate({**recording, "recorder": {**recording["recorder"], "state": "paused"}})


def test_recording_events_go_new_then_end_and_alerts_new_update_end(running_agent):
    agent, tracker, events = running_agent
    check = validator("event.schema.json")
    agent.trigger(Trigger(Action.START, "button"))
    assert wait_for(lambda: agent.recorder_thread.status.state.recording)
    agent.trigger(Trigger(Action.STOP, "command"))
    assert wait_for(lambda: len(events) >= 2)
    assert [(e["type"], e["after"]["kind"]) for e in events] == [("new", "recording"), ("end", "recording")]
    assert events[0]["after"]["id"] == events[1]["after"]["id"] and events[1]["after"]["stop_trigger"] == "command"
    low = {"code": "storage_low", "severity": "warning", "text": "storage low: 1 GiB"}
    alerts = tracker.on_alerts([low]) + tracker.on_alerts([{**low, "text": "storage low: 0.9 GiB"}]) \
        + tracker.on_alerts([])
    assert [a["type"] for a in alerts] == ["new", "update", "end"]
    assert len({a["after"]["id"] for a in alerts}) == 1
    for message in events + alerts:
        check.validate(message)


def test_a_recording_the_recorder_ends_by_itself_is_updated_then_ended_by_internal():
    tracker, check = EventTracker("kod-07", "ordnungsamt"), validator("event.schema.json")
    events = tracker.on_recorder_event(RecordingEvent("recording", True, False, "inc-1", "command", 1_700_000_000.0))
    events += tracker.on_recorder_event(RecordingEvent("finishing", True, True, "inc-1", "command", 1_700_000_010.0))
    events += tracker.on_recorder_event(RecordingEvent("standby", False, True, "inc-1", None, 1_700_000_015.0))
    assert [(e["type"], e["after"]["state"]) for e in events] == [
        ("new", "recording"), ("update", "finishing"), ("end", "ended")]
    assert events[0]["after"]["trigger"] == "command" and events[2]["after"]["stop_trigger"] == "internal"
    assert events[2]["after"]["end_time"] == "2023-11-14T22:13:35.000Z"
    for message in events:
        check.validate(message)


def test_command_payloads_and_results_validate():
    key = Ed25519PrivateKey.generate()

    class Key:
        def verify(self, sig, data):
            try:
                key.public_key().verify(sig, data)
                return True
            except Exception:
                return False

    verifier = CommandVerifier("kod-07", Key(), pre_event_max_s=30, not_before=0)
    handler = CommandHandler(verifier, CommandActions(lambda *request: None, lambda s: None, lambda: None,
                                                      lambda *a: None))
    check_cmd, check_result = validator("command.schema.json"), validator("command-result.schema.json")
    for name, args in [("start", {}), ("mirror", {"on": True}), ("identify", {"seconds": 3}),
                       ("set", {"key": "display.language", "value": "en"}), ("request-telemetry", {}),
                       ("assign", {"officer": "ko-17"}), ("unassign", {})]:
        payload = sign_command(key, "kod-07", name, args)
        check_cmd.validate(json.loads(payload))
        check_result.validate(json.loads(handler.handle(payload).to_json()))
    check_result.validate(json.loads(handler.handle(b"nonsense").to_json()))


def test_the_display_reports_the_frame_rate_it_keeps(tmp_path):
    """Telemetry and `bodycam status` say how many frames the panel really shows (issue 14): a bus too slow
    for the configured rate shows as a lower figure, not silently."""
    from agent.doctor_cli import describe_status

    cfg = device_config(tmp_path, display={"driver": "emulator", "panel": "colour", "width": 320, "height": 240,
                                           "fps": 10.0, "emulator_path": str(tmp_path / "panel.gif")})
    agent = Agent(cfg)
    agent.start()
    try:
        agent.trigger(Trigger(Action.MIRROR_ON, "test"))  # the mirror redraws every frame
        assert wait_for(lambda: agent.status().display is not None and agent.status().display.fps > 0, 15)
        doc = agent.refresh_alerts()
        message = build_telemetry(doc.as_json(), clock_sync="unsynchronized", alerts=[])
    finally:
        agent.stop()
    validator("telemetry.schema.json").validate(message)
    assert message["display"]["driver"] == "emulator" and message["display"]["target_fps"] == 10.0
    assert 0 < message["display"]["fps"] <= 11
    line = next(line for line in describe_status(doc, doc.time) if line.startswith("display:"))
    assert line.startswith("display: emulator, ") and "of 10 frames/s" in line


def test_a_display_slower_than_asked_is_said_in_bodycam_status():
    from agent.doctor_cli import describe_status
    from agent.status import DisplayRate, StatusDocument

    doc = StatusDocument(time=0.0, version="x", device="d", site="s", state="mirror",
                         display=DisplayRate("st7789", 6.0, 15.0))
    assert "display: st7789, 6 of 15 frames/s (the panel's bus cannot carry more)" in describe_status(doc, 0.0)


def test_telemetry_says_the_pre_event_mode_and_the_legal_profile(tmp_path):
    from agent import config

    cfg = config.replace(device_config(tmp_path, recording={"pre_event_mode": "announced"}), "policy", profile="nrw")
    agent = Agent(cfg, officer_ui=False)
    agent.start()
    try:
        check = validator("telemetry.schema.json")
        assert wait_for(lambda: agent.recorder_thread.status.frames_seen > 5 and agent.monitor.snapshot)
        standby = build_telemetry(agent.status().as_json(), clock_sync="unsynchronized", alerts=[])
        check.validate(standby)
        assert standby["policy"] == {"profile": "nrw"}
        assert (standby["recorder"]["pre_event_mode"], standby["recorder"]["pre_recording"]) == ("announced", False)
        agent.trigger(Trigger(Action.MIRROR_ON, "test"))
        assert wait_for(lambda: agent.status().pre_event.active)
        mirror = build_telemetry(agent.status().as_json(), clock_sync="unsynchronized", alerts=[])
        check.validate(mirror)
        assert mirror["recorder"]["pre_recording"] is True
    finally:
        agent.stop()
    older = {k: v for k, v in standby.items() if k != "policy"}  # a device from before these fields
    older["recorder"] = {k: v for k, v in standby["recorder"].items() if k not in ("pre_event_mode", "pre_recording")}
    check.validate(older)
    with pytest.raises(jsonschema.ValidationError):
        check.validate({**standby, "recorder": {**standby["recorder"], "pre_event_mode": "always"}})
