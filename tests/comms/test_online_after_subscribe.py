"""A device says "online" only once the broker holds its command subscription (#11: a command sent the
moment a control room sees "online" was lost when it beat the device's SUBSCRIBE on a new session)."""

from __future__ import annotations

import queue
import time

from comms.device import BrokerChannelThread
from comms.mqtt import Connected, Subscribed
from tests.support import wait_for


class RecordingLink:
    """The part of MqttLink the broker channel uses, recording what it is asked to do and in which order."""

    def __init__(self):
        self.calls: list[str] = []
        self.listener: queue.Queue | None = None

    def add_listener(self, events, filters=()):
        self.listener = events

    def subscribe(self, filters):
        self.calls.append("subscribe " + ",".join(f for f, _ in filters))
        return 7

    def announce_online(self, payload=b"online"):
        self.calls.append("online")

    def publish(self, topic, payload, **kw):
        self.calls.append(f"publish {topic}")
        return 1


def test_online_follows_the_suback_of_the_command_subscription():
    link = RecordingLink()
    channel = BrokerChannelThread(link, site="duisburg", device="kod-07", version="x", telemetry=lambda: None,
                                  interval_s=3600, expiry_s=60)
    channel._maybe_send_telemetry = lambda: None  # telemetry is not what this test is about
    channel.start()
    try:
        link.listener.put(Connected(session_present=False, receive_maximum=20, maximum_packet_size=None, window=16))
        assert wait_for(lambda: "subscribe bodycam/duisburg/kod-07/cmd" in link.calls)
        time.sleep(0.2)
        assert "online" not in link.calls  # not before the broker holds the subscription
        link.listener.put(Subscribed(mid=99, reason_codes=(1,)))  # someone else's SUBACK
        time.sleep(0.2)
        assert "online" not in link.calls
        link.listener.put(Subscribed(mid=7, reason_codes=(1,)))
        assert wait_for(lambda: "online" in link.calls)
        assert link.calls.index("subscribe bodycam/duisburg/kod-07/cmd") < link.calls.index("online")
    finally:
        channel.stop()
