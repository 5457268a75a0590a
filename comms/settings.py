"""Config sections for everything across the wire: [mqtt] and [uplink] on the device, and the receiver's file.

The device's sections are frozen dataclasses declared with :func:`agent.config.option` and listed in
``agent.config.Config`` by the integrator; they are validated by the same loader as the agent's own.
The receiver is a back-office program with its own TOML file (``[receiver]`` and ``[mqtt]``, see
:func:`load_receiver_config`); it reuses :class:`MqttSettings`, so both sides connect the same way.

Paths to secrets (``key_file``, ``receipt_key``) may be relative: they are then looked up in
``$CREDENTIALS_DIRECTORY`` (systemd's ``LoadCredential=``) when that is set.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from agent.config import option, parse_section, read_config_text
from agent.errors import ConfigError


@dataclass(frozen=True)
class MqttSettings:
    host: str = option("localhost", "Broker host name; must match the broker certificate's name.")
    port: int = option(8883, "Broker TLS port.", min=1, max=65535)
    ca_file: str = option("/etc/bodycam/mqtt/ca.crt", "CA certificate that signed the broker's certificate.")
    cert_file: str = option("/etc/bodycam/mqtt/client.crt",
                            "This client's certificate; its CN is the broker username (the device id).")
    key_file: str = option("/etc/bodycam/mqtt/client.key", "This client's private key (mode 0600).")
    client_id: str = option("", "MQTT client id; empty means the device id (or receiver id). Must stay "
                                "stable: the broker keeps the session under it. A broker set up as "
                                "docs/BROKER.md replaces it with the certificate's CN.")
    keepalive_s: int = option(30, "Seconds between pings; a silent link is detected after 1.5 times this.",
                              min=2, max=3600)
    session_expiry_s: int = option(
        7 * 24 * 3600, "How long the broker keeps the session (subscriptions, queued receipts) while offline.",
        min=0, max=4_294_967_295)
    reconnect_min_s: float = option(1.0, "First reconnect delay; doubles up to reconnect_max_s.",
                                    min=0.05, max=600.0)
    reconnect_max_s: float = option(60.0, "Longest reconnect delay.", min=0.1, max=3600.0)

    def resolved(self, name: str) -> str:
        """A secret's path: relative paths come from ``$CREDENTIALS_DIRECTORY`` when systemd provides one."""
        path = getattr(self, name)
        creds = os.environ.get("CREDENTIALS_DIRECTORY")
        return str(Path(creds) / path) if creds and not os.path.isabs(path) else path


@dataclass(frozen=True)
class UplinkSettings:
    enabled: bool = option(True, "Upload sealed segments to the back office (false: keep everything on the card).")
    chunk_kib: int = option(256, "Chunk size in KiB (a multiple of 4); one chunk is one MQTT message.",
                            min=4, max=8192)
    window: int = option(16, "Chunks in flight at most; the broker's Receive Maximum lowers it further.",
                         min=1, max=65535)
    segments_ahead: int = option(4, "Segments offered at once (hides the receiver's round trip; each keeps "
                                    "its spool file open while it transfers).", min=1, max=16)
    receipt_key: str = option("/etc/bodycam/keys/receipt.pub",
                              "The back office's receipt public key; only receipts it verifies delete segments.")
    receipt_timeout_s: float = option(30.0, "No status or receipt for this long: offer the segment again.",
                                      min=0.5, max=3600.0)
    offer_backoff_max_s: float = option(300.0, "Longest wait between offers to a silent receiver.",
                                        min=1.0, max=86400.0)
    reject_retry_s: float = option(600.0, "After a rejection the device cannot fix, wait this long before "
                                          "offering that segment again.", min=1.0, max=86400.0)
    retry_min_s: float = option(1.0, "First back-off after a PUBACK error (quota, size); doubles per error.",
                                min=0.05, max=600.0)


@dataclass(frozen=True)
class ReceiverSettings:
    id: str = option("receiver-1", "This receiver's id: named in every receipt it signs.", pattern="id")
    store_dir: str = option("/srv/bodycam/store", "Evidence store: <site>/<device>/<incident>/<stem>.age "
                                                  "and .manifest.json.")
    incoming_dir: str = option("/srv/bodycam/incoming", "Temporary area for chunks of incomplete segments.")
    devices: tuple[str, ...] = option(("/etc/bodycam/devices",),
                                      "Enrolled device.pub files or directories of them.")
    receipt_key: str = option("/etc/bodycam/receipt.key", "The receipt signing key (mode 0600).")
    share_group: str = option("", "MQTT v5 shared-subscription group; receivers in one group split the load "
                                  "and must share store_dir and incoming_dir. Empty: plain subscription.")
    max_segment_mib: float = option(256.0, "Larger segments are rejected (oversize).", min=0.1, max=65536.0)
    max_chunk_kib: int = option(1024, "Larger chunks are rejected (oversize).", min=4, max=8192)
    queue_messages: int = option(64, "Messages the broker may have in flight to this receiver (its MQTT Receive "
                                     "Maximum); each is acknowledged once handled, the broker holds the rest.",
                                 min=1, max=65_535)
    partial_max_age_h: float = option(72.0, "Chunks of a segment untouched this long are deleted.",
                                      min=0.1, max=8760.0)
    gap_report_s: float = option(300.0, "How often to report chain gaps that persist (out-of-order arrival "
                                        "fills most gaps within seconds).", min=1.0, max=86400.0)
    summary_s: float = option(300.0, "How often to log a summary at INFO (segments stored, chunks, rejections "
                                     "by reason, connection).", min=1.0, max=86400.0)


@dataclass(frozen=True)
class ReceiverConfig:
    receiver: ReceiverSettings
    mqtt: MqttSettings
    source: str = "<defaults>"


def load_receiver_config(path: str | os.PathLike) -> ReceiverConfig:
    """Read the receiver's TOML file: sections [receiver] and [mqtt]; unknown sections or keys are errors."""
    return loads_receiver_config(read_config_text(path, "receiver config file"), str(path))


def loads_receiver_config(text: str, source: str = "<string>") -> ReceiverConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    known = {"receiver": ReceiverSettings, "mqtt": MqttSettings}
    for key, value in data.items():
        if key not in known:
            raise ConfigError(f"{source}: unknown section [{key}] (known: {', '.join(known)})")
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: '{key}' must be a table [{key}]")
    receiver = parse_section(ReceiverSettings, data.get("receiver", {}), "receiver", source)
    mqtt = parse_section(MqttSettings, data.get("mqtt", {}), "mqtt", source)
    check_mqtt(mqtt, source)
    return ReceiverConfig(receiver, mqtt, source)


@dataclass(frozen=True)
class CommandsConfig:
    enabled: bool = option(True, "Accept remote commands signed by the back office's command key.")
    public_key: str = option("/etc/bodycam/keys/command.pub", "The back office's command public key "
                                                              "('ed25519:<base64>' line).")
    max_age_seconds: float = option(60.0, "Reject commands whose time stamp is further off than this.",
                                    min=5.0, max=3600.0)
    pre_event_max_seconds: float = option(30.0, "Highest pre-event window a remote 'set' may choose (policy).",
                                          min=0.0, max=120.0)


def check_uplink(uplink: UplinkSettings, source: str) -> None:
    """Cross-key checks parse_section cannot express."""
    if uplink.chunk_kib % 4:
        raise ConfigError(f"{source}: uplink.chunk_kib = {uplink.chunk_kib} must be a multiple of 4 (whole pages)")


def check_mqtt(mqtt: MqttSettings, source: str) -> None:
    """Cross-key checks parse_section cannot express."""
    if mqtt.reconnect_min_s > mqtt.reconnect_max_s:
        raise ConfigError(f"{source}: mqtt.reconnect_min_s ({mqtt.reconnect_min_s:g}) must not exceed "
                          f"mqtt.reconnect_max_s ({mqtt.reconnect_max_s:g})")
    if mqtt.client_id and (len(mqtt.client_id) > 64 or not mqtt.client_id.isascii()
                           or any(c in mqtt.client_id for c in "+#/ ")):
        raise ConfigError(f"{source}: mqtt.client_id {mqtt.client_id!r} must be up to 64 ASCII characters "
                          "without '+', '#', '/' or spaces")


EXAMPLE_RECEIVER_TOML = """\
# bodycam receiver: subscribes to the devices' uploads, stores verified segments, signs receipts.
[receiver]
# Named in every receipt this receiver signs.
id = "receiver-1"
# Evidence store, laid out <site>/<device>/<incident>/<stem>.age + .manifest.json ('bodycam verify' works on it).
store_dir = "/srv/bodycam/store"
# Chunks of segments still arriving; deleted once the segment is stored.
incoming_dir = "/srv/bodycam/incoming"
# Enrolled devices: device.pub files or directories of them.
devices = ["/etc/bodycam/devices"]
# Receipt signing key from 'bodycam keys receiver' (mode 0600). Devices get receipt.pub.
receipt_key = "/etc/bodycam/receipt.key"
# Several receivers with one group split the load (MQTT v5 $share); they must share store_dir and incoming_dir.
share_group = ""
# Reject segments and chunks larger than this.
max_segment_mib = 256.0
max_chunk_kib = 1024
# Messages the broker may have in flight to this receiver; each is acknowledged once handled, the broker
# holds the rest (MQTT Receive Maximum).
queue_messages = 64
# Partial segments untouched this long are deleted.
partial_max_age_h = 72.0
# Report chain gaps that are still open after this long.
gap_report_s = 300.0
# Log a summary line (segments stored, chunks, rejections by reason, connection) this often.
summary_s = 300.0

[mqtt]
host = "mqtt.example.city"
port = 8883
ca_file = "/etc/bodycam/mqtt/ca.crt"
# Certificate CN must be listed as a receiver in the broker ACL; each receiver has its own (also in a
# share group): the broker makes the CN the client id, so two receivers on one certificate evict each other.
cert_file = "/etc/bodycam/mqtt/receiver-1.crt"
key_file = "/etc/bodycam/mqtt/receiver-1.key"
client_id = ""
keepalive_s = 30
# In a share group use 0, so a receiver that is down does not hold back messages meant for the group.
session_expiry_s = 86400
reconnect_min_s = 1.0
reconnect_max_s = 60.0
"""
