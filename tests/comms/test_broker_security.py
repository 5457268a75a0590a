"""The broker set-up of docs/BROKER.md holds: devices are confined to their own namespace by certificate.

What is checked is what gets *delivered* (a SUBACK may grant a subscription that delivers nothing) and
the PUBACK reason code of a refused publish.
"""

from __future__ import annotations

import queue
import time

import paho.mqtt.client as paho
import pytest

from comms.mqtt import Connected, Disconnected, Message, MqttLink, Published, Subscribed
from comms_env import test_uplink_settings, wait_until
from mqtt_harness import HOST, Pki


class Client:
    """A test client on our own MqttLink wrapper, collecting everything it hears."""

    def __init__(self, settings, client_id: str, filters=()):
        self.events: queue.Queue = queue.Queue()
        self.link = MqttLink(settings, client_id)
        self.link.add_listener(self.events, tuple(filters))
        self.filters = filters
        self.seen: list = []
        self.link.start()
        self.connack: Connected = self.wait(lambda e: isinstance(e, Connected), "CONNACK")
        if filters:
            self.link.subscribe([(f, 1) for f in filters])
            self.wait(lambda e: isinstance(e, Subscribed), "SUBACK")

    def wait(self, match, what: str, timeout: float = 5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=0.05)
            except queue.Empty:
                continue
            self.seen.append(event)
            if match(event):
                return event
        raise AssertionError(f"no {what} within {timeout} s; saw {self.seen}")

    def publish(self, topic: str, payload: bytes) -> Published:
        mid = self.link.publish(topic, payload)
        return self.wait(lambda e: isinstance(e, Published) and e.mid == mid, f"PUBACK for {topic}")

    def messages(self, settle: float = 0.5) -> list[Message]:
        time.sleep(settle)
        while True:
            try:
                self.seen.append(self.events.get_nowait())
            except queue.Empty:
                break
        return [e for e in self.seen if isinstance(e, Message)]

    def stop(self):
        self.link.stop()


@pytest.fixture
def clients():
    made = []

    def make(settings, client_id, filters=()):
        c = Client(settings, client_id, filters)
        made.append(c)
        return c
    yield make
    for c in made:
        c.stop()


def test_a_device_cannot_publish_into_another_devices_namespace(settings_for, clients):
    receiver = clients(settings_for("bo-recv-1"), "bo-recv-1", ["bodycam/+/+/up/#"])
    kod07 = clients(settings_for("kod-07"), "kod-07")
    assert kod07.publish("bodycam/duisburg/kod-07/up/seg/offer", b"own").reason_code == 0
    refused = kod07.publish("bodycam/duisburg/kod-08/up/seg/offer", b"forged")
    assert refused.reason_code == 0x87 and refused.failed
    # Writing into its own downlink (where receipts come from) is refused too, and so is a neighbour's status.
    assert kod07.publish("bodycam/duisburg/kod-07/down/seg/receipt", b"self-made").reason_code == 0x87
    assert kod07.publish("bodycam/duisburg/kod-08/status", b"offline").reason_code == 0x87
    assert not kod07.publish("bodycam/duisburg/kod-07/status", b"online").failed  # 0x10: nobody subscribed
    delivered = [(m.topic, m.payload) for m in receiver.messages()]
    assert delivered == [("bodycam/duisburg/kod-07/up/seg/offer", b"own")]


def test_a_device_cannot_read_another_devices_namespace(settings_for, clients):
    kod07 = clients(settings_for("kod-07"), "kod-07", ["bodycam/duisburg/kod-07/down/seg/+"])
    # kod-08 tries everything: the whole tree, kod-07's downlink, kod-07's uplink. The broker grants the
    # SUBACKs (mosquitto checks reads at delivery) -- so look at what is delivered.
    spy = clients(settings_for("kod-08"), "kod-08", ["bodycam/#", "bodycam/duisburg/kod-07/down/seg/+",
                                                     "bodycam/duisburg/kod-07/up/#"])
    receiver = clients(settings_for("bo-recv-1"), "bo-recv-1")
    assert receiver.publish("bodycam/duisburg/kod-07/down/seg/receipt", b"for kod-07").reason_code == 0
    kod07.publish("bodycam/duisburg/kod-07/up/seg/offer", b"kod-07 upload")
    assert [m.payload for m in kod07.messages()] == [b"for kod-07"]
    assert spy.messages() == []


def test_the_client_id_is_no_identity_the_certificate_is(settings_for, clients):
    receiver = clients(settings_for("bo-recv-1"), "bo-recv-1", ["bodycam/+/+/up/#"])
    impostor = clients(settings_for("kod-08"), "kod-07")  # kod-08's certificate, kod-07's client id
    assert impostor.publish("bodycam/duisburg/kod-07/up/seg/offer", b"forged").reason_code == 0x87
    assert receiver.messages() == []


@pytest.mark.parametrize("impostor_cn", ["kod-08", "control-room"])
def test_another_clients_id_does_not_hand_over_its_stored_session(settings_for, clients, impostor_cn):
    """A receipt queued for an offline device stays queued for it, whoever connects with its client id."""
    down = "bodycam/duisburg/kod-07/down/seg/+"
    kod07 = clients(settings_for("kod-07"), "kod-07", [down])
    kod07.stop()  # offline; the broker keeps its session and queues for it
    receiver = clients(settings_for("bo-recv-1"), "bo-recv-1")
    assert receiver.publish("bodycam/duisburg/kod-07/down/seg/receipt", b"receipt").reason_code == 0
    impostor = clients(settings_for(impostor_cn), "kod-07")  # a valid certificate, kod-07's client id
    assert not impostor.connack.session_present
    impostor.link.subscribe([(down, 1)])
    assert impostor.messages() == []
    impostor.stop()
    back = clients(settings_for("kod-07"), "kod-07", [down])
    assert back.connack.session_present
    assert [(m.topic, m.payload) for m in back.messages()] == [("bodycam/duisburg/kod-07/down/seg/receipt",
                                                                 b"receipt")]


@pytest.mark.parametrize("victim", ["bo-recv-1", "kod-07"])
def test_another_clients_id_does_not_disconnect_the_running_client(settings_for, clients, victim):
    real = clients(settings_for(victim), victim)
    impostor = clients(settings_for("kod-08"), victim)
    own = "bodycam/duisburg/kod-08/status"
    assert impostor.publish(own, b"online").reason_code < 0x80
    # A round trip of the real client after the impostor's CONNACK: a takeover would have closed its link first.
    probe = "bodycam/duisburg/kod-07/status" if victim == "kod-07" else "bodycam/duisburg/kod-07/down/seg/receipt"
    assert real.publish(probe, b"still here").reason_code < 0x80
    assert not [e for e in real.seen if isinstance(e, Disconnected)]
    assert not [e for e in impostor.seen if isinstance(e, Disconnected)]


def test_the_doctors_broker_probe_leaves_the_devices_session_alone(settings_for, clients):
    """The broker makes the CN the client id, so `bodycam doctor` connects *as* the device: it must not
    discard the device's session (the receipts queued for it)."""
    import dataclasses

    from agent import config, doctor
    from agent.doctor.network import check_broker
    down = "bodycam/duisburg/kod-07/down/seg/+"
    kod07 = clients(settings_for("kod-07"), "kod-07", [down])
    kod07.stop()
    receiver = clients(settings_for("bo-recv-1"), "bo-recv-1")
    assert receiver.publish("bodycam/duisburg/kod-07/down/seg/receipt", b"receipt").reason_code == 0
    cfg = config.replace(config.Config(), "device", id="kod-07-doctor")  # the broker makes it the CN, kod-07
    cfg = config.replace(cfg, "mqtt", **dataclasses.asdict(settings_for("kod-07")))
    check = check_broker(doctor.Context("agent.toml", config=cfg))
    assert check.level is doctor.Level.OK, check
    back = clients(settings_for("kod-07"), "kod-07", [down])
    assert [m.payload for m in back.messages()] == [b"receipt"]


def test_clients_without_a_valid_certificate_are_refused(tmp_path, broker, pki):
    def attempt(**tls) -> bool:
        c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="anon", protocol=paho.MQTTv5)
        c.tls_set(ca_certs=str(pki.ca_path), **tls)
        try:
            c.connect(HOST, broker.port, keepalive=5)
            for _ in range(20):
                c.loop(0.1)
                if c.is_connected():
                    break
            return c.is_connected()
        except OSError:
            return False
        finally:
            c.disconnect()
            c.socket() and c.socket().close()

    assert not attempt()  # no certificate at all
    rogue = Pki(tmp_path / "rogue", "someone else's CA").issue("kod-07")
    assert not attempt(certfile=str(rogue.cert), keyfile=str(rogue.key))  # a certificate from another CA
    good = pki.issue("kod-07")
    assert attempt(certfile=str(good.cert), keyfile=str(good.key))  # the control: a real one gets in


def test_the_uplink_stops_and_raises_a_fault_when_the_broker_says_not_authorized(world, pki, broker, settings_for):
    device = world.device("kod-07")
    device.seal_random(2, size=20_000)
    office = world.backoffice([device])
    # kod-07's spool, but a certificate for kod-99: the ACL refuses every publish under bodycam/+/kod-07/.
    wrong = settings_for("kod-99")
    from comms_env import uplink_for
    up = uplink_for(device, wrong, office.receipt_pub, uplink=test_uplink_settings())
    world._stoppables.append(up)
    up.start()
    wait_until(lambda: up.thread.status.state == "refused", 10, what="the uplink to stop")
    status = up.thread.status
    assert "0x87" in status.fault and "not authorized" in status.fault
    assert status.puback_errors >= 1
    sent = status.chunks_sent
    time.sleep(1.0)
    assert up.thread.status.chunks_sent == sent and up.thread.is_alive()  # stopped sending, still reporting
    assert len(device.spool.pending()) == 2  # nothing deleted


def _conf_block_after(text: str, heading: str) -> str:
    start = text.index("```conf\n", text.index(heading)) + len("```conf\n")
    return text[start:text.index("```\n", start)]


def test_broker_md_shows_the_configuration_the_tests_run():
    """docs/BROKER.md and backoffice.brokerconf (which the local broker writes) cannot drift apart."""
    from pathlib import Path

    from backoffice.brokerconf import acl_text, mosquitto_conf
    doc = (Path(__file__).parents[2] / "docs" / "BROKER.md").read_text(encoding="utf-8")
    assert _conf_block_after(doc, "## mosquitto.conf") == mosquitto_conf()
    assert _conf_block_after(doc, "## ACL") == acl_text()
    assert "use_username_as_clientid true" in mosquitto_conf()
