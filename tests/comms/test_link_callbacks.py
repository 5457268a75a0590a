"""paho's callbacks never wait: a listener that is busy while PUBACKs pour in cannot stall the link.

paho calls ``on_publish`` while it holds its out-message mutex, and ``publish()`` needs that mutex. A
callback that waited for room in a listener's queue therefore deadlocked the link as soon as the
listener, to drain its queue, had to publish (#11.5: all three receivers stopped for good at 50
devices). These tests build exactly that moment with real parts, without load: the listener's thread
is held while its link collects more PUBACKs than its queue used to hold, then it is let go and must
be able to publish.
"""

from __future__ import annotations

import queue
import threading

import pytest

from comms import protocol
from comms.device import BrokerChannelThread
from comms.mqtt import Connected, Message, MqttLink, Published, Subscribed
from comms_env import wait_until

SITE, DEVICE = "duisburg", "kod-07"


class PubackCounter:
    """A second listener on a link that counts PUBACKs: they stop when paho's thread is stuck in a callback."""

    def __init__(self, link: MqttLink):
        self.events: queue.Queue = queue.Queue()
        self.count = 0
        link.add_listener(self.events)

    def seen(self) -> int:
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return self.count
            self.count += isinstance(event, Published)


def publish_in_background(link: MqttLink, topic: str, count: int) -> threading.Thread:
    """Publishes from a helper thread, so that a link stuck in a callback fails the test instead of hanging it."""
    def run():
        for n in range(count):
            link.publish(topic, f"{n}".encode(), qos=1)

    t = threading.Thread(target=run, name="TestPublisher", daemon=True)
    t.start()
    return t


def messages_on(inbox: queue.Queue, topic: str, seen: list[bytes]) -> list[bytes]:
    while True:
        try:
            event = inbox.get_nowait()
        except queue.Empty:
            return seen
        if isinstance(event, Message) and event.topic == topic:
            seen.append(event.payload)


def test_a_receiver_busy_with_a_full_queue_can_still_publish(world, settings_for):
    device = world.device(DEVICE, SITE)
    office = world.backoffice([device], queue_messages=4)
    busy, release = threading.Event(), threading.Event()
    handle = office.receiver.handle

    def slow_handle(topic, payload):
        busy.set()
        release.wait(30)
        return handle(topic, payload)

    office.receiver.handle = slow_handle
    pubacks = PubackCounter(office.link)
    dev_inbox: queue.Queue = queue.Queue()
    status_topic = protocol.down_topic(SITE, DEVICE, protocol.STATUS)
    dev_link = MqttLink(settings_for(DEVICE), DEVICE)
    dev_link.add_listener(dev_inbox, (status_topic,))
    dev_link.start()
    try:
        assert isinstance(dev_inbox.get(timeout=10), Connected)
        dev_link.subscribe([(status_topic, 1)])
        assert isinstance(dev_inbox.get(timeout=10), Subscribed)
        dev_link.publish(protocol.up_topic(SITE, DEVICE, protocol.OFFER), b"not an offer")
        assert busy.wait(10), "the receiver never got the offer"
        # While the receiver thread is busy, its link collects PUBACKs for what else is published on it
        # (the assembler's receipts, in production): ten times what the receiver's queue was allowed to hold.
        publisher = publish_in_background(office.link, status_topic, 40)
        try:
            wait_until(lambda: pubacks.seen() >= 40, 15, what="40 PUBACKs")
        except AssertionError:
            raise AssertionError(f"PUBACKs stopped at {pubacks.seen()} of 40: paho's thread is stuck in a "
                                 "callback") from None
        publisher.join(10)
        assert not publisher.is_alive()
        release.set()
        # The receiver answers the offer: its own publish goes through.
        seen: list[bytes] = []
        wait_until(lambda: any(b'"rejected"' in p for p in messages_on(dev_inbox, status_topic, seen)), 15,
                   what="the receiver's answer to the offer")
        assert office.thread.is_alive()
    finally:
        release.set()
        dev_link.stop()


def test_a_busy_device_channel_cannot_stall_the_uplinks_link(settings_for):
    """The device's uplink and broker channel share one link; a busy channel must not stop the uploads."""
    link = MqttLink(settings_for(DEVICE), DEVICE)
    busy, release, hold = threading.Event(), threading.Event(), threading.Event()

    def telemetry() -> dict:
        if hold.is_set():
            busy.set()
            release.wait(30)
        return {"recorder": {"state": "standby", "incident_id": None}, "alerts": []}

    channel = BrokerChannelThread(link, site=SITE, device=DEVICE, version="test", telemetry=telemetry,
                                  interval_s=3600, expiry_s=60)
    pubacks = PubackCounter(link)
    channel.start()
    link.start()
    try:
        wait_until(lambda: link.connected, 10, what="the device link")
        hold.set()
        assert busy.wait(10)
        # The uplink keeps sending while the channel is busy: more PUBACKs than the channel's queue held.
        before = pubacks.seen()
        publisher = publish_in_background(link, protocol.up_topic(SITE, DEVICE, protocol.CHUNK), 1200)
        try:
            wait_until(lambda: pubacks.seen() >= before + 1200, 30, what="1200 PUBACKs")
        except AssertionError:
            raise AssertionError(f"PUBACKs stopped at {pubacks.seen() - before} of 1200: paho's thread is stuck "
                                 "in a callback") from None
        publisher.join(10)
        assert not publisher.is_alive()
        release.set()
        hold.clear()
        after = publish_in_background(link, protocol.up_topic(SITE, DEVICE, protocol.CHUNK), 10)
        after.join(10)
        assert not after.is_alive(), "the device's link stays stuck after the channel resumed"
    finally:
        release.set()
        channel.stop()
        link.stop()


def test_a_busy_receiver_takes_at_most_queue_messages_and_the_broker_holds_the_rest(world, settings_for):
    """Bounded memory without a waiting callback: MQTT flow control (Receive Maximum, PUBACK once handled)."""
    device = world.device(DEVICE, SITE)
    office = world.backoffice([device], queue_messages=4)
    busy, release, handled = threading.Event(), threading.Event(), []
    handle = office.receiver.handle

    def slow_handle(topic, payload):
        busy.set()
        release.wait(30)
        handled.append(payload)
        return handle(topic, payload)

    office.receiver.handle = slow_handle
    dev_link = MqttLink(settings_for(DEVICE), DEVICE)
    pubacks = PubackCounter(dev_link)
    dev_link.start()
    try:
        wait_until(lambda: dev_link.connected, 10, what="the device link")
        publisher = publish_in_background(dev_link, protocol.up_topic(SITE, DEVICE, protocol.OFFER), 20)
        assert busy.wait(10)
        wait_until(lambda: pubacks.seen() >= 20, 15, what="the broker to take all 20 messages")
        publisher.join(10)
        inside = [office.thread._events.qsize()]
        wait_until(lambda: inside.append(office.thread._events.qsize()) or len(inside) > 10, 5, interval=0.05)
        assert max(inside) <= 3, inside  # one in hand, three waiting: the broker holds the other sixteen
        release.set()
        wait_until(lambda: len(handled) == 20, 15, what="every message handled once the receiver moves again")
    finally:
        release.set()
        dev_link.stop()


def test_a_bounded_listener_queue_is_refused(settings_for):
    link = MqttLink(settings_for(DEVICE), DEVICE)
    with pytest.raises(ValueError, match="unbounded"):
        link.add_listener(queue.Queue(maxsize=1000), ("bodycam/#",))
