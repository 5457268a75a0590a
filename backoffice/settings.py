"""The back office's settings: the receiver's TOML file ([receiver] and [mqtt]).

Read by the same loader as the device's config (:mod:`base.config`); it reuses the wire's
:class:`~comms.settings.MqttSettings`, so both programs connect the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from base.config import option, parse_sections, parse_toml, read_config_text
from comms.settings import MqttSettings


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
    catalog: bool = option(False, "Record every stored segment in the evidence catalog before its receipt goes "
                                  "out, and catalog what the store holds at start (needs the 'office' extra and "
                                  "'bodycam-office migrate'; settings from the environment, docs/BACKOFFICE.md).")


@dataclass(frozen=True)
class ReceiverConfig:
    receiver: ReceiverSettings
    mqtt: MqttSettings
    source: str = "<defaults>"


def load_receiver_config(path: str | os.PathLike) -> ReceiverConfig:
    """Read the receiver's TOML file: sections [receiver] and [mqtt]; unknown sections or keys are errors."""
    return loads_receiver_config(read_config_text(path, "receiver config file"), str(path))


def loads_receiver_config(text: str, source: str = "<string>") -> ReceiverConfig:
    built = parse_sections(parse_toml(text, source), {"receiver": ReceiverSettings, "mqtt": MqttSettings}, source)
    return ReceiverConfig(**built, source=source)


EXAMPLE_RECEIVER_TOML = """\
# bodycam-office receiver: subscribes to the devices' uploads, stores verified segments, signs receipts.
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
# Record every stored segment in the evidence catalog before its receipt goes out, and catalog what the
# store holds at start (docs/BACKOFFICE.md; BODYCAM_OFFICE_DATA / DATABASE_URL from the environment).
catalog = false

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
