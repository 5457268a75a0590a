"""The running agent against a real mosquitto: status with last will, telemetry and events that validate
against docs/schemas, and command round trips including every rejection class, agent healthy after."""

import base64
import dataclasses
import json
import os
import queue
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent import config
from agent.demo import prepare_workdir
from evidence.keys import generate_receipt_key
from comms.commands import canonical, sign_command
from comms.mqtt import Connected, Message, MqttLink

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"
SITE, DEV = "duisburg", "kod-07"
BASE = f"bodycam/{SITE}/{DEV}"


def schema(name):
    return jsonschema.Draft202012Validator(json.loads((SCHEMAS / name).read_text()))


@pytest.fixture
def agent_setup(tmp_path, settings_for):
    cfg = prepare_workdir(config.Config(), tmp_path)
    cfg = config.replace(cfg, "device", id=DEV, site=SITE)
    cfg = config.replace(cfg, "camera", backend="synthetic", width=320, height=240)
    cfg = config.replace(cfg, "recording", pre_event_seconds=1.0, segment_seconds=2.0)
    cfg = config.replace(cfg, "storage", warn_free_mib=64.0, critical_free_mib=16.0)
    cfg = config.replace(cfg, "runtime", status_file=str(tmp_path / "status.json"))
    cfg = config.replace(cfg, "telemetry", interval_seconds=5)
    cfg = config.replace(cfg, "mqtt", **dataclasses.asdict(settings_for(DEV)))
    (tmp_path / "bo").mkdir()
    receipt = generate_receipt_key(tmp_path / "bo")
    command_key = Ed25519PrivateKey.generate()
    raw = command_key.public_key().public_bytes_raw()
    (tmp_path / "bo" / "command.pub").write_text("ed25519:" + base64.b64encode(raw).decode() + "\n")
    cfg = config.replace(cfg, "uplink", enabled=True, receipt_key=str(receipt.pub_path))
    cfg = config.replace(cfg, "commands", public_key=str(tmp_path / "bo" / "command.pub"))
    path = tmp_path / "agent.toml"
    path.write_text(config.dumps(cfg))
    return path, command_key


@pytest.fixture
def control_room(settings_for):
    inbox = queue.Queue()
    link = MqttLink(settings_for("control-room"), "control-room")
    link.add_listener(inbox, (f"{BASE}/#",))
    link.start()
    event = inbox.get(timeout=10)
    assert isinstance(event, Connected)
    link.subscribe([(f"{BASE}/#", 1)])
    yield link, inbox
    link.stop()


def next_message(inbox, topic, timeout=15.0, where=lambda m: True):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            item = inbox.get(timeout=0.2)
        except queue.Empty:
            continue
        if isinstance(item, Message) and item.topic == topic and where(item):
            return item
    raise AssertionError(f"no message on {topic} within {timeout} s")


def test_running_agent_speaks_the_documented_contract(agent_setup, control_room, broker):
    path, key = agent_setup
    link, inbox = control_room
    proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--config", str(path)],
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, GPIOZERO_PIN_FACTORY="mock"))
    try:
        assert next_message(inbox, f"{BASE}/status", where=lambda m: m.payload == b"online")
        telemetry = json.loads(next_message(inbox, f"{BASE}/telemetry").payload)
        schema("telemetry.schema.json").validate(telemetry)
        assert telemetry["device"] == DEV and telemetry["recorder"]["state"] == "standby"

        def command(name, args=None, **kw):
            payload = sign_command(key, DEV, name, args, **kw)
            link.publish(f"{BASE}/cmd", payload, qos=1)
            return json.loads(next_message(inbox, f"{BASE}/cmd/result").payload)

        result = command("start", command_id="go-1")
        schema("command-result.schema.json").validate(result)
        assert result == {**result, "id": "go-1", "ok": True, "code": "accepted"}
        new = json.loads(next_message(inbox, f"{BASE}/events").payload)
        schema("event.schema.json").validate(new)
        assert (new["type"], new["after"]["trigger"]) == ("new", "command")
        recording = json.loads(next_message(inbox, f"{BASE}/telemetry",
                                            where=lambda m: b'"recording"' in m.payload).payload)
        assert recording["recorder"]["incident_id"] == new["after"]["id"]

        # every bad-input class: an error result, nothing else changes
        forged = sign_command(Ed25519PrivateKey.generate(), DEV, "stop")
        bad = {"bad_signature": forged, "malformed": b"{oops", "too_large": b"x" * 5000,
               "unknown_command": sign_command(key, DEV, "erase"),
               "invalid_args": sign_command(key, DEV, "set", {"key": "recording.pre_event_seconds", "value": 500}),
               "stale": sign_command(key, DEV, "stop", ts=time.time() - 3600),
               "wrong_device": sign_command(key, "kod-99", "stop")}
        for code, payload in bad.items():
            link.publish(f"{BASE}/cmd", payload, qos=1)
            answer = json.loads(next_message(inbox, f"{BASE}/cmd/result").payload)
            schema("command-result.schema.json").validate(answer)
            assert (answer["ok"], answer["code"]) == (False, code), answer
        doc = json.loads(sign_command(key, DEV, "stop", command_id="go-1"))  # replay of a used id
        link.publish(f"{BASE}/cmd", canonical(doc), qos=1)
        assert json.loads(next_message(inbox, f"{BASE}/cmd/result").payload)["code"] == "replayed"
        assert command("request-telemetry")["ok"]
        still = json.loads(next_message(inbox, f"{BASE}/telemetry").payload)
        assert still["recorder"]["state"] == "recording"  # no rejected command stopped it

        assert command("stop")["ok"]
        end = json.loads(next_message(inbox, f"{BASE}/events", where=lambda m: b'"end"' in m.payload).payload)
        assert end["after"]["id"] == new["after"]["id"] and end["after"]["stop_trigger"] == "command"

        proc.send_signal(signal.SIGKILL)  # no goodbye: the broker publishes the last will
        proc.wait(timeout=10)
        assert next_message(inbox, f"{BASE}/status", timeout=30, where=lambda m: m.payload == b"offline")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert "Traceback" not in proc.stderr.read()


def test_a_clean_stop_says_stopped(agent_setup, control_room):
    path, _ = agent_setup
    _, inbox = control_room
    proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--config", str(path)],
                            stderr=subprocess.DEVNULL, env=dict(os.environ, GPIOZERO_PIN_FACTORY="mock"))
    try:
        assert next_message(inbox, f"{BASE}/status", where=lambda m: m.payload == b"online")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert next_message(inbox, f"{BASE}/status", where=lambda m: m.payload == b"stopped")
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.system  # agent process, broker and control-room CLI together (~7 s)
def test_control_room_cli_sends_commands_and_shows_the_fleet(tmp_path, settings_for, capsys):
    from backoffice.cli import main

    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    assert main(["keys", "command", "--out", str(keys_dir)]) == 0
    cfg = prepare_workdir(config.Config(), tmp_path / "dev")
    cfg = config.replace(cfg, "device", id=DEV, site=SITE)
    cfg = config.replace(cfg, "camera", backend="synthetic", width=320, height=240)
    cfg = config.replace(cfg, "storage", warn_free_mib=64.0, critical_free_mib=16.0)
    cfg = config.replace(cfg, "runtime", status_file=str(tmp_path / "status.json"))
    cfg = config.replace(cfg, "mqtt", **dataclasses.asdict(settings_for(DEV)))
    (tmp_path / "bo").mkdir()
    receipt = generate_receipt_key(tmp_path / "bo")
    cfg = config.replace(cfg, "uplink", enabled=True, receipt_key=str(receipt.pub_path))
    cfg = config.replace(cfg, "commands", public_key=str(keys_dir / "command.pub"))
    cfg = config.replace(cfg, "checkout", enabled=True, badges=str(tmp_path / "badges.toml"))
    agent_toml = tmp_path / "agent.toml"
    agent_toml.write_text(config.dumps(cfg))
    control = settings_for("control-room")
    control_toml = tmp_path / "control.toml"
    control_toml.write_text("[mqtt]\n" + "\n".join(
        f"{k} = {json.dumps(v)}" for k, v in dataclasses.asdict(control).items()) + "\n")
    proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--config", str(agent_toml)],
                            stderr=subprocess.DEVNULL, env=dict(os.environ, GPIOZERO_PIN_FACTORY="mock"))
    try:
        common = ["--config", str(control_toml), "--key", str(keys_dir / "command.key"), "--site", SITE,
                  "--device", DEV]
        deadline = time.monotonic() + 20
        while main(["command", *common, "mirror", "--arg", "on=true", "--timeout", "3"]) != 0:
            assert time.monotonic() < deadline, "the agent never answered"
        assert "OK (accepted)" in capsys.readouterr().out
        assert main(["command", *common, "set", "--arg", "key=display.language", "--arg", "value=en"]) == 0
        assert "OK (accepted)" in capsys.readouterr().out
        assert main(["command", *common, "identify", "--arg", "seconds=2"]) == 0
        assert main(["command", *common, "set", "--arg", "key=display.language", "--arg", "value=fr"]) == 1
        assert "REJECTED (invalid_args)" in capsys.readouterr().out
        assert main(["command", *common, "assign", "--officer", "ko-17"]) == 0  # officer check-out
        assert "OK (accepted)" in capsys.readouterr().out
        assert main(["command", *common, "assign", "--officer", "Erika Mustermann"]) == 1
        assert "REJECTED (invalid_args)" in capsys.readouterr().out
        assert main(["fleet", "--config", str(control_toml), "--once", "3"]) == 0
        table = capsys.readouterr().out.splitlines()
        row = next(line for line in table if DEV in line)
        assert SITE in row and "online" in row and "MIRROR" in row and row.endswith("ko-17")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


def test_a_flood_of_junk_commands_leaves_two_audit_lines(agent_setup, control_room):
    path, _ = agent_setup
    link, inbox = control_room
    proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--config", str(path)],
                            stderr=subprocess.DEVNULL, env=dict(os.environ, GPIOZERO_PIN_FACTORY="mock"))
    try:
        assert next_message(inbox, f"{BASE}/status", where=lambda m: m.payload == b"online")
        for i in range(300):  # no key needed
            link.publish(f"{BASE}/cmd", b"{oops" if i % 2 else b"x" * 5000, qos=1)
        for _ in range(300):
            assert not json.loads(next_message(inbox, f"{BASE}/cmd/result").payload)["ok"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    audit_lines = [json.loads(line) for line in Path(config.load(path).storage.audit_log).read_text().splitlines()]
    refusals = [(a["event"], a["fields"]) for a in audit_lines if a["event"].startswith("command_reject")]
    assert [event for event, _ in refusals] == ["command_rejected", "command_rejections"]
    assert refusals[0][1]["code"] == "too_large"  # the first one, in full
    assert refusals[1][1]["counts"] == {"malformed": 150, "too_large": 149} and refusals[1][1]["ended"]


def events_until(inbox, where, timeout=60.0) -> list[dict]:
    """Every event message up to and including the first that ``where`` accepts."""
    seen = []
    while True:
        seen.append(json.loads(next_message(inbox, f"{BASE}/events", timeout=timeout).payload))
        if where(seen[-1]):
            return seen


def test_alerts_open_when_the_agent_was_killed_are_ended_or_kept_by_the_next_agent(agent_setup, control_room):
    path, _ = agent_setup
    _, inbox = control_room
    check = schema("event.schema.json")
    cfg = config.load(path)
    faulty_panel = config.replace(cfg, "display", driver="ssd1306", i2c_port=9)  # display_fault, in both runs
    before, after = path.with_name("before.toml"), path.with_name("after.toml")
    before.write_text(config.dumps(config.replace(faulty_panel, "storage", warn_free_mib=1_048_576.0)))  # storage_low
    after.write_text(config.dumps(faulty_panel))
    env = dict(os.environ, GPIOZERO_PIN_FACTORY="mock")

    def run(config_path):
        return subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--config", str(config_path)],
                                stderr=subprocess.DEVNULL, env=env)

    def is_new(code):
        return lambda e: e["type"] == "new" and e["after"].get("code") == code

    proc = run(before)
    try:
        first = events_until(inbox, is_new("storage_low"))
        if not any(map(is_new("display_fault"), first)):
            first += events_until(inbox, is_new("display_fault"))
    finally:
        proc.send_signal(signal.SIGKILL)  # no goodbye: nothing can be published on the way out
        proc.wait(timeout=10)
    raised = {e["after"]["code"]: e["after"]["id"] for e in first if e["type"] == "new" and e["after"]["kind"] == "alert"}

    proc = run(after)
    try:
        second = events_until(inbox, lambda e: e["type"] == "end" and e["after"].get("code") == "storage_low")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    for message in first + second:
        check.validate(message)
    assert second[-1]["after"]["id"] == raised["storage_low"]  # the very alert that was open ends
    assert second[-1]["after"]["end_time"] is not None
    # still open after the restart: the same alert goes on, neither ended nor raised a second time
    assert not [e for e in second if e["after"].get("code") == "display_fault"]
