"""Home Assistant discovery through a real mosquitto with the ACL of docs/BROKER.md, from a running agent.

The control room (Home Assistant's certificate) must receive the device's retained configs, may send
Home Assistant's birth message, and the device must answer it by announcing again. A broker that
refuses the configs (an ACL without the discovery lines) must show up as an alert and a log line.
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import signal
import subprocess
import sys
import time

from agent import config
from agent.demo import prepare_workdir
from evidence.keys import generate_receipt_key
from comms import homeassistant
from comms.mqtt import Connected, Message, MqttLink, Published
from mqtt_harness import Broker, acl_text

SITE, DEV = "duisburg", "kod-07"
BASE = f"bodycam/{SITE}/{DEV}"
CONFIGS = "homeassistant/+/+/+/config"
ENTITIES = len(homeassistant.ENTITIES)


def agent_config(tmp_path, mqtt_settings):
    cfg = prepare_workdir(config.Config(), tmp_path)
    cfg = config.replace(cfg, "device", id=DEV, site=SITE)
    cfg = config.replace(cfg, "camera", backend="synthetic", width=320, height=240)
    cfg = config.replace(cfg, "storage", warn_free_mib=64.0, critical_free_mib=16.0)
    cfg = config.replace(cfg, "runtime", status_file=str(tmp_path / "status.json"))
    cfg = config.replace(cfg, "telemetry", interval_seconds=5, homeassistant=True)
    cfg = config.replace(cfg, "commands", enabled=False)
    cfg = config.replace(cfg, "mqtt", **dataclasses.asdict(mqtt_settings))
    (tmp_path / "bo").mkdir()
    receipt = generate_receipt_key(tmp_path / "bo")
    cfg = config.replace(cfg, "uplink", enabled=True, receipt_key=str(receipt.pub_path))
    path = tmp_path / "agent.toml"
    path.write_text(config.dumps(cfg))
    return path


class ControlRoom:
    """Home Assistant's side: one link with the control room's certificate, collecting what it hears."""

    def __init__(self, settings):
        self.inbox: queue.Queue = queue.Queue()
        self.link = MqttLink(settings, "control-room")
        self.link.add_listener(self.inbox, (f"{BASE}/#", CONFIGS))
        self.link.start()
        self.next(lambda e: isinstance(e, Connected), "CONNACK")

    def next(self, match, what, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                event = self.inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            if match(event):
                return event
        raise AssertionError(f"no {what} within {timeout} s")

    def message(self, topic_filter, what, where=lambda m: True, timeout=20.0) -> Message:
        import paho.mqtt.client as paho
        return self.next(lambda e: isinstance(e, Message) and paho.topic_matches_sub(topic_filter, e.topic)
                         and where(e), what, timeout)

    def configs(self, what) -> dict[str, dict]:
        got = {}
        while len(got) < ENTITIES:
            m = self.message(CONFIGS, f"{what} ({len(got)} of {ENTITIES} so far)")
            got[m.topic] = json.loads(m.payload)
        return got

    def publish(self, topic, payload) -> Published:
        mid = self.link.publish(topic, payload, qos=1)
        return self.next(lambda e: isinstance(e, Published) and e.mid == mid, f"PUBACK for {topic}")

    def stop(self):
        self.link.stop()


def run_agent(path):
    return subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--config", str(path)],
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, GPIOZERO_PIN_FACTORY="mock"))


def stop_agent(proc) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.stderr.read()


def test_discovery_reaches_home_assistant_through_the_documented_acl_and_follows_its_birth(
        tmp_path, settings_for):
    room = ControlRoom(settings_for("control-room"))
    room.link.subscribe([(f"{BASE}/#", 1)])
    proc = run_agent(agent_config(tmp_path, settings_for(DEV)))
    log = ""
    try:
        room.message(f"{BASE}/status", "the device online", where=lambda m: m.payload == b"online")
        room.message(f"{BASE}/telemetry", "telemetry (published after the discovery configs)")
        room.link.subscribe([(CONFIGS, 1)])  # after the device announced: these come from the retained store
        retained = room.configs("retained discovery configs")
        assert {t.split("/")[2] for t in retained} == {DEV}
        assert {c["state_topic"] for c in retained.values()} == {f"{BASE}/telemetry"}

        birth = room.publish("homeassistant/status", b"online")  # what Home Assistant sends on its start
        assert not birth.failed, birth
        again = room.configs("configs announced again after Home Assistant's birth message")
        assert again == retained
    finally:
        room.stop()
        log = stop_agent(proc)
    assert "Traceback" not in log and "refused" not in log


def test_a_broker_that_refuses_discovery_raises_an_alert_and_logs_it(tmp_path, pki, settings_for):
    without_discovery = "\n".join(line for line in acl_text(["bo-recv-1"]).splitlines()
                                  if "homeassistant" not in line) + "\n"
    broker = Broker(tmp_path / "no-ha", pki, ["bo-recv-1"], acl=without_discovery)
    broker.start()
    proc = None
    try:
        room = ControlRoom(settings_for("control-room", broker.port))
        room.link.subscribe([(f"{BASE}/telemetry", 1)])
        proc = run_agent(agent_config(tmp_path / "dev", settings_for(DEV, broker.port)))
        try:
            telemetry = room.message(f"{BASE}/telemetry", "telemetry with the homeassistant_refused alert",
                                     where=lambda m: b"homeassistant_refused" in m.payload, timeout=30)
        finally:
            room.stop()
        alert = next(a for a in json.loads(telemetry.payload)["alerts"] if a["code"] == "homeassistant_refused")
        assert alert["severity"] == "warning" and "0x87" in alert["text"]
    finally:
        log = stop_agent(proc) if proc is not None else ""
        broker.kill()
    assert "Home Assistant discovery" in log and "homeassistant/sensor/kod-07/state/config" in log


def test_the_refusal_ends_when_the_broker_accepts_the_next_announcement(tmp_path, pki, settings_for, caplog):
    from comms.device import BrokerChannelThread

    full = acl_text(["bo-recv-1"])
    broker = Broker(tmp_path / "b", pki, ["bo-recv-1"],
                    acl="\n".join(line for line in full.splitlines() if "homeassistant" not in line) + "\n")
    broker.start()
    link = MqttLink(settings_for(DEV, broker.port), DEV)
    channel = BrokerChannelThread(link, site=SITE, device=DEV, version="test", interval_s=60, expiry_s=120,
                                  telemetry=lambda: {"recorder": {"state": "standby", "incident_id": None},
                                                     "alerts": []},
                                  homeassistant_prefix="homeassistant")
    room = None
    try:
        channel.start()
        link.start()
        deadline = time.monotonic() + 20
        while f"{ENTITIES} config(s)" not in (channel.discovery_fault or ""):
            assert time.monotonic() < deadline, f"not every config refused: {channel.discovery_fault}"
            time.sleep(0.05)
        assert "Not authorized (0x87)" in channel.discovery_fault
        assert sum("refused by the broker" in r.getMessage() for r in caplog.records) == ENTITIES

        broker.acl_path.write_text(full)  # IT adds the discovery lines and reloads the broker
        broker.process.send_signal(signal.SIGHUP)
        room = ControlRoom(settings_for("control-room", broker.port))
        room.link.subscribe([(CONFIGS, 1)])
        deadline = time.monotonic() + 20
        while channel.discovery_fault is not None:  # Home Assistant's birth: the device announces again
            assert time.monotonic() < deadline, f"the fault stays: {channel.discovery_fault}"
            assert not room.publish("homeassistant/status", b"online").failed
            time.sleep(0.5)
        assert len(room.configs("the accepted configs")) == ENTITIES
    finally:
        if room is not None:
            room.stop()
        channel.stop()
        link.stop()
        broker.kill()
