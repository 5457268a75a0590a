"""The device's side of the broker contract, besides evidence: status, telemetry, events, commands.

One :class:`BrokerChannelThread` shares the device's single MQTT link with the uplink. It announces
``online`` on every connect (the link's last will says ``offline``; a clean stop says ``stopped``),
publishes retained telemetry every ``telemetry.interval_seconds`` and at once on a change of state or alerts
(with a message expiry), publishes recording and alert events, answers commands on ``cmd/result``,
and re-announces Home Assistant discovery when Home Assistant's birth message arrives. paho's
callbacks only enqueue; everything here runs on this thread.

Discovery goes out at QoS 1 so that a broker's refusal is seen: an ACL without the discovery lines
makes Home Assistant show nothing and nobody else complains, so each refused config is logged and
:attr:`BrokerChannelThread.discovery_fault` says so until the broker accepts it (the runtime turns it
into the ``homeassistant_refused`` alert).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from typing import Callable


from .commands import CommandHandler
from .events import EventTracker, RecordingEvent
from .homeassistant import discovery_messages, is_birth
from .mqtt import Connected, Message, MqttLink, Published, Subscribed
from .openevents import OpenEventsFile
from .telemetry import significant

logger = logging.getLogger(__name__)


def topic(site: str, device: str, kind: str) -> str:
    return f"bodycam/{site}/{device}/{kind}"


class BrokerChannelThread(threading.Thread):
    def __init__(self, link: MqttLink, *, site: str, device: str, version: str, telemetry: Callable[[], dict],
                 interval_s: float, expiry_s: int, commands: CommandHandler | None = None,
                 homeassistant_prefix: str | None = None, open_events: OpenEventsFile | None = None):
        super().__init__(name="BrokerChannelThread", daemon=True)
        self.link, self.site, self.device, self.version = link, site, device, version
        self.telemetry, self.interval_s, self.expiry_s = telemetry, interval_s, expiry_s
        self.commands = commands
        self.ha_prefix = homeassistant_prefix
        self.events = EventTracker(device, site, open_events)
        self._inbox: queue.Queue = queue.Queue()  # unbounded: the link's callbacks never wait (comms.mqtt)
        self._stopping = threading.Event()
        self._wanted = threading.Event()
        self._last_sent: dict | None = None
        self._due = 0.0
        self.fault: str | None = None
        #: Set while the broker refuses Home Assistant discovery configs (a sentence; read by the runtime).
        self.discovery_fault: str | None = None
        self._discovery_mids: dict[int, str] = {}  # message id -> topic of the latest announcement
        self._discovery_refused: dict[str, str] = {}  # topic -> why
        filters = [topic(site, device, "cmd")] + ([f"{homeassistant_prefix}/status"] if homeassistant_prefix else [])
        self._filters = filters
        self._online_after: int | None = None  # the subscription whose SUBACK makes us say "online"
        link.add_listener(self._inbox, tuple(filters))

    # -- other threads ------------------------------------------------------------------------------
    def on_recorder_event(self, event: RecordingEvent) -> None:
        """From the recorder's thread: only enqueues."""
        try:
            self._inbox.put_nowait(("recorder", event))
        except queue.Full:
            logger.warning("event queue full; a recorder event is not published")

    def request_telemetry(self) -> None:
        self._wanted.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self.join(timeout)

    # -- this thread ----------------------------------------------------------------------------------
    def run(self) -> None:
        for message in self.events.end_interrupted():  # a recording the last agent's end cut short
            self._publish_event(message)
        while not self._stopping.is_set():
            try:
                item = self._inbox.get(timeout=0.25)
            except queue.Empty:
                item = None
            try:
                if item is not None:
                    self._handle(item)
                if self.commands is not None:
                    self.commands.tick()  # a burst of refused commands that went quiet gets its summary line
                self._maybe_send_telemetry()
                self.fault = None
            except Exception as exc:  # a bad payload or a bug must not silence the device's reporting
                logger.exception("broker channel failed on %r", item)
                self.fault = f"{type(exc).__name__}: {exc}"
        if self.commands is not None:
            try:
                self.commands.close()  # the counts of a burst still open reach the audit log
            except Exception:
                logger.exception("the last summary of refused commands was not written")

    def _handle(self, item) -> None:
        if isinstance(item, Connected):
            # "online" promises that a command sent now reaches us: say it once the broker has our
            # subscription (a new session has none until its SUBACK), not before.
            self._online_after = self.link.subscribe([(f, 1) for f in self._filters])
            if self._online_after is None:
                self.link.announce_online()
            self._announce_discovery()
            self._wanted.set()
        elif isinstance(item, Subscribed) and item.mid == self._online_after:
            self._online_after = None
            refused = [f for f, code in zip(self._filters, item.reason_codes) if code >= 0x80]
            if refused:
                logger.error("the broker refused our subscription to %s: commands cannot reach this device; "
                             "check the broker's ACL", ", ".join(refused))
            self.link.announce_online()
        elif isinstance(item, Published):
            ha_topic = self._discovery_mids.pop(item.mid, None)  # PUBACKs of every user of the link come here
            if ha_topic is not None:
                self._discovery_answered(ha_topic, item)
        elif isinstance(item, Message):
            if item.topic == topic(self.site, self.device, "cmd") and self.commands is not None:
                result = self.commands.handle(item.payload)
                self.link.publish(topic(self.site, self.device, "cmd/result"), result.to_json(), qos=1)
            elif self.ha_prefix and is_birth(item.topic, item.payload, self.ha_prefix):
                self._announce_discovery()
        elif isinstance(item, tuple) and item[0] == "recorder":
            for message in self.events.on_recorder_event(item[1]):
                self._publish_event(message)

    def _maybe_send_telemetry(self) -> None:
        now = time.monotonic()
        doc = self.telemetry()
        if not (self._wanted.is_set() or now >= self._due or significant(self._last_sent, doc)
                or self.events.reconcile_due):
            return
        self._wanted.clear()
        self._due = now + self.interval_s
        for message in self.events.on_alerts(doc["alerts"]):
            self._publish_event(message)
        # Retained, so a fleet view that connects now sees every device at once; the expiry removes a
        # retained snapshot that has gone stale (the broker drops it, the status topic says offline).
        self.link.publish(topic(self.site, self.device, "telemetry"), json.dumps(doc, sort_keys=True).encode(),
                          qos=0, retain=True, expiry_s=self.expiry_s)
        self._last_sent = doc

    def _publish_event(self, message: dict) -> None:
        self.link.publish(topic(self.site, self.device, "events"), json.dumps(message, sort_keys=True).encode(),
                          qos=1)

    def _announce_discovery(self) -> None:
        if not self.ha_prefix:
            return
        self._discovery_mids = {}  # answers to an earlier announcement no longer matter
        for ha_topic, payload in discovery_messages(self.site, self.device, self.version, self.ha_prefix):
            mid = self.link.publish(ha_topic, payload, qos=1, retain=True)
            if mid is None:
                self._discovery_failed(ha_topic, "not accepted by the MQTT client")
            else:
                self._discovery_mids[mid] = ha_topic

    def _discovery_answered(self, ha_topic: str, puback: Published) -> None:
        if puback.failed:
            self._discovery_failed(ha_topic, f"refused by the broker: {puback.reason} (0x{puback.reason_code:02X})")
        elif self._discovery_refused.pop(ha_topic, None) is not None:
            logger.info("Home Assistant discovery %s accepted by the broker again", ha_topic)
            self._update_discovery_fault()

    def _discovery_failed(self, ha_topic: str, why: str) -> None:
        if self._discovery_refused.get(ha_topic) != why:
            logger.error("Home Assistant discovery %s %s: Home Assistant will not show this entity; check the "
                         "broker's ACL (docs/BROKER.md)", ha_topic, why)
        self._discovery_refused[ha_topic] = why
        self._update_discovery_fault()

    def _update_discovery_fault(self) -> None:
        refused = self._discovery_refused
        if not refused:
            self.discovery_fault = None
            return
        ha_topic, why = next(iter(refused.items()))
        self.discovery_fault = (f"Home Assistant discovery {why} for {len(refused)} config(s), e.g. {ha_topic}: "
                                "check the broker's ACL (docs/BROKER.md)")
