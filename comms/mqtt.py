"""One carefully set-up MQTT connection (paho-mqtt 2.x), shared by everything that talks to the broker.

What it does for every user of the connection:

* MQTT v5, ``CallbackAPIVersion.VERSION2``, TLS with this client's certificate (the broker maps its CN
  to the username), a stable client id, ``clean_start=False`` and a session expiry, so subscriptions and
  QoS 1 messages queued for us survive a dropped link; an optional retained last will (the agent's
  ``bodycam/<site>/<device>/status`` = ``offline``), which whoever owns that topic replaces with
  ``online`` on each :class:`Connected` (:meth:`announce_online`).
* The window of QoS 1 messages in flight is ``min(configured, the broker's Receive Maximum)``. paho does
  not apply the broker's Receive Maximum itself, and a client that exceeds it is disconnected, so the
  window is applied to paho's in-flight limit in the CONNACK callback, before paho releases anything
  on the new link; every user of the link shares that limit (paho queues what does not fit).
* paho's callbacks run on paho's network thread and only put small event objects into the listeners'
  queues (:class:`Connected`, :class:`Disconnected`, :class:`Published` with the PUBACK reason code,
  :class:`Message`). All decisions are made on the listeners' own threads.

Listeners register a queue and the topic filters they want messages for (``add_listener``), normally
before :meth:`start`. Connection events and PUBACKs go to every listener (a listener ignores message ids it
did not publish: ids in flight are unique).

A note on locking: paho calls ``on_publish`` while it holds its out-message mutex, which every
``publish()`` needs. A callback that waited -- for room in a bounded queue, say -- while the listener
that would make room was itself about to publish, stopped the link for good (#11.5). So callbacks never
wait: listener queues are unbounded. Where memory must stay bounded against a fast sender (the
receiver), the link uses MQTT's own flow control instead: ``ack_when_handled`` sends each QoS 1
message's PUBACK only when every listener it went to called :meth:`ack`, and ``receive_maximum`` caps
the messages the broker may have in flight to us, so the broker holds the rest.

Why PUBACK is not the end of the story: mosquitto persists by snapshot, so a message it acknowledged
can vanish in a crash. The uplink therefore trusts only the receiver's signed receipt (comms.uplink).
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
from dataclasses import dataclass

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from base.errors import BodycamError

from .settings import MqttSettings

logger = logging.getLogger(__name__)

#: The MQTT default when a broker sends no Receive Maximum.
DEFAULT_RECEIVE_MAXIMUM = 65535


class MqttError(BodycamError):
    """The MQTT connection cannot be set up (bad TLS files, bad settings)."""


@dataclass(frozen=True, slots=True)
class Connected:
    session_present: bool
    receive_maximum: int
    maximum_packet_size: int | None
    #: The window now applied: min(configured window, receive_maximum).
    window: int


@dataclass(frozen=True, slots=True)
class ConnectFailed:
    reason: str


@dataclass(frozen=True, slots=True)
class Disconnected:
    reason: str


@dataclass(frozen=True, slots=True)
class Published:
    mid: int
    reason_code: int
    reason: str

    @property
    def failed(self) -> bool:
        return self.reason_code >= 0x80


@dataclass(frozen=True, slots=True)
class Subscribed:
    mid: int
    reason_codes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    #: For :meth:`MqttLink.ack`: paho's message id, QoS and the connection it arrived on.
    mid: int = 0
    qos: int = 0
    connection: int = 0


class MqttLink:
    """The device's (or receiver's) one connection to the broker; see the module docstring."""

    def __init__(self, settings: MqttSettings, client_id: str, *, window: int = 16,
                 will: tuple[str, bytes] | None = None, receive_maximum: int | None = None,
                 ack_when_handled: bool = False):
        self.settings = settings
        self.client_id = settings.client_id or client_id
        self.configured_window = window
        self.will = will
        self._listeners: list[tuple[queue.Queue, tuple[str, ...]]] = []
        self._listeners_lock = threading.Lock()
        self._last_connected: Connected | None = None
        self._started = False
        self._connected = threading.Event()
        self.window = window
        self.ack_when_handled = ack_when_handled
        #: Counts connections, so that an ack meant for a message of an earlier one is not sent on this one.
        self._connection = 0
        #: (connection, mid) -> listeners that have not acknowledged that message yet.
        self._unacked: dict[tuple[int, int], int] = {}
        self._ack_lock = threading.Lock()
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                                   protocol=paho.MQTTv5, reconnect_on_failure=True)
        client = self._client
        try:
            client.tls_set(ca_certs=settings.ca_file, certfile=settings.resolved("cert_file"),
                           keyfile=settings.resolved("key_file"), cert_reqs=ssl.CERT_REQUIRED,
                           tls_version=ssl.PROTOCOL_TLS_CLIENT)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise MqttError(f"cannot load the MQTT TLS files (ca {settings.ca_file}, cert {settings.cert_file}, "
                            f"key {settings.key_file}): {exc}") from None
        client.max_inflight_messages_set(window)
        client.max_queued_messages_set(0)
        client.manual_ack_set(ack_when_handled)
        client.reconnect_delay_set(settings.reconnect_min_s, settings.reconnect_max_s)
        if will is not None:
            client.will_set(will[0], will[1], qos=1, retain=True)
        self._connect_properties = Properties(PacketTypes.CONNECT)
        self._connect_properties.SessionExpiryInterval = settings.session_expiry_s
        if receive_maximum is not None:
            self._connect_properties.ReceiveMaximum = receive_maximum
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message

    # -- set-up ----------------------------------------------------------------------------------------
    def add_listener(self, events: queue.Queue, filters: tuple[str, ...] = ()) -> None:
        """Deliver connection events, PUBACKs and messages matching ``filters`` into ``events``.

        ``events`` must be unbounded: paho's callbacks never wait for room (see the note on locking).
        May be called while the link runs (a worker restarted by the runtime): if the link is up, the
        new listener first gets the current :class:`Connected`, so it subscribes like the others did.
        """
        if getattr(events, "maxsize", 0) > 0:
            raise ValueError("an MqttLink listener's queue must be unbounded: paho's callbacks never wait for room "
                             "(bound the messages with receive_maximum and ack_when_handled instead)")
        with self._listeners_lock:
            self._listeners = self._listeners + [(events, tuple(filters))]  # copy on write: callbacks iterate freely
            current = self._last_connected if self._connected.is_set() else None
        if current is not None:
            events.put(current)

    def remove_listener(self, events: queue.Queue) -> None:
        with self._listeners_lock:
            self._listeners = [(q, f) for q, f in self._listeners if q is not events]

    def start(self) -> None:
        """Connect in the background and keep reconnecting; returns at once."""
        self._started = True
        self._client.connect_async(self.settings.host, self.settings.port, keepalive=self.settings.keepalive_s,
                                   clean_start=False, properties=self._connect_properties)
        self._client.loop_start()
        logger.info("MQTT link %s -> %s:%d started", self.client_id, self.settings.host, self.settings.port)

    def stop(self, timeout: float = 5.0, final: bytes | None = None) -> None:
        """Disconnect cleanly and end the network thread.

        A clean disconnect discards the last will, so ``final`` (e.g. ``b"stopped"``) is published on the
        will's topic first; paho sends it before the DISCONNECT.
        """
        if not self._started:
            return
        if final is not None and self.will is not None and self.connected:
            self.publish(self.will[0], final, qos=1, retain=True)
        self._client.disconnect()
        stopper = threading.Thread(target=self._client.loop_stop, name=f"MqttStop-{self.client_id}", daemon=True)
        stopper.start()
        stopper.join(timeout)
        if stopper.is_alive():
            logger.error("MQTT network thread of %s did not end within %.0f s", self.client_id, timeout)
        self._started = False

    # -- used from the listeners' threads ---------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False,
                expiry_s: int | None = None) -> int | None:
        """Hand a message to paho; returns its message id, or None when paho refused it outright.

        A QoS 1 message published while the link is down is kept by paho and sent after reconnecting,
        so its id stays valid and a :class:`Published` event will follow.
        """
        properties = None
        if expiry_s is not None:  # telemetry only: a stale snapshot must not arrive late (never on evidence)
            properties = Properties(PacketTypes.PUBLISH)
            properties.MessageExpiryInterval = int(expiry_s)
        try:
            info = self._client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        except ValueError as exc:
            logger.error("MQTT publish to %s refused by paho: %s", topic, exc)
            return None
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
            logger.warning("MQTT publish to %s not queued: %s", topic, paho.error_string(info.rc))
            return None
        return info.mid

    def subscribe(self, filters: list[tuple[str, int]]) -> int | None:
        """Subscribe (idempotent; call after every Connected: a broker that lost our session lost it too)."""
        rc, mid = self._client.subscribe(filters)
        if rc != paho.MQTT_ERR_SUCCESS:
            logger.warning("MQTT subscribe %s not sent: %s", [f for f, _ in filters], paho.error_string(rc))
            return None
        return mid

    def ack(self, message: Message) -> None:
        """A listener is done with ``message``; with ``ack_when_handled`` the PUBACK goes once all are.

        A no-op without ``ack_when_handled``, for QoS 0, and for a message of an earlier connection
        (its packet id means nothing on this one; a resumed session brings the message again).
        """
        if not self.ack_when_handled or message.qos == 0:
            return
        key = (message.connection, message.mid)
        with self._ack_lock:
            left = self._unacked.get(key)  # forgotten on every new connection
            if left is None:
                return
            if left > 1:
                self._unacked[key] = left - 1
                return
            del self._unacked[key]
        self._client.ack(message.mid, message.qos)

    def announce_online(self, payload: bytes = b"online") -> None:
        """Replace the retained last will with ``payload`` (call on each Connected, from a listener's thread)."""
        if self.will is not None:
            self.publish(self.will[0], payload, qos=1, retain=True)

    # -- paho callbacks (paho's network thread: enqueue only) ------------------------------------------
    def _apply_window(self, receive_maximum: int) -> int:
        """Limit paho's in-flight QoS 1 messages to min(configured, the broker's Receive Maximum).

        paho's public setter refuses while a connection is open, and the CONNACK is the first moment
        the broker's value is known, so the attribute paho reads is set directly. paho reads it for
        every message it releases from its queue and for the batch it resends after a reconnect.
        """
        self.window = max(1, min(self.configured_window, receive_maximum))
        self._client._max_inflight_messages = self.window  # noqa: SLF001 (see the docstring)
        return self.window

    def _broadcast(self, event) -> None:
        for events, _ in self._listeners:
            events.put_nowait(event)  # unbounded (add_listener): never waits

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._broadcast(ConnectFailed(f"broker refused the connection: {reason_code}"))
            return
        receive_max = getattr(properties, "ReceiveMaximum", DEFAULT_RECEIVE_MAXIMUM)
        max_packet = getattr(properties, "MaximumPacketSize", None)
        # Applied here, not on a listener's thread: paho sends held-back messages right after this callback.
        window = self._apply_window(receive_max)
        event = Connected(bool(flags.session_present), receive_max, max_packet, window)
        with self._ack_lock:
            self._connection += 1
            self._unacked.clear()
        with self._listeners_lock:
            self._last_connected = event
            self._connected.set()
        self._broadcast(event)

    def _on_connect_fail(self, client, userdata) -> None:
        self._broadcast(ConnectFailed("could not reach the broker or the TLS handshake failed"))

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connected.clear()
        self._broadcast(Disconnected(str(reason_code)))

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._broadcast(Published(mid, int(reason_code.value), str(reason_code)))

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        self._broadcast(Subscribed(mid, tuple(int(rc.value) for rc in reason_codes)))

    def _on_message(self, client, userdata, message) -> None:
        topic = message.topic
        takers = [events for events, filters in self._listeners
                  if any(paho.topic_matches_sub(_unshared(f), topic) for f in filters)]
        with self._ack_lock:
            event = Message(topic, message.payload, message.mid, message.qos, self._connection)
            if self.ack_when_handled and message.qos > 0 and takers:
                self._unacked[(self._connection, message.mid)] = len(takers)
        if self.ack_when_handled and message.qos > 0 and not takers:
            client.ack(message.mid, message.qos)  # nobody wants it: done with it now
        for events in takers:
            events.put_nowait(event)  # unbounded (add_listener): never waits


def _unshared(topic_filter: str) -> str:
    """``$share/<group>/<filter>`` matches like ``<filter>``."""
    if topic_filter.startswith("$share/"):
        return topic_filter.split("/", 2)[2]
    return topic_filter
