"""The broker set-up of docs/BROKER.md as text: mosquitto.conf and the ACL, from one place.

docs/BROKER.md shows :func:`mosquitto_conf` and :func:`acl_text` with their production defaults
(tests/docs check that the document and this module agree), and the local broker of the demo and the
tests (backoffice.localbroker) writes the same text with its own paths, port and queue sizes. So what the
tests prove about identity and confinement is what a city's IT installs.

Identity: ``use_identity_as_username`` makes the certificate CN the username, and
``use_username_as_clientid`` makes it the client id too. Without the second line any valid
certificate could connect with another client's id, take over its stored session (queued receipts are
then dropped by the ACL on delivery) or disconnect it. The price: one certificate, one connection at
a time; every program that is connected at the same time needs its own certificate.
"""

from __future__ import annotations

from collections.abc import Sequence

#: The values docs/BROKER.md shows (a city's broker); the local broker overrides paths and sizes.
PRODUCTION = {
    "acl_file": "/etc/mosquitto/bodycam.acl",
    "persistence_location": "/var/lib/mosquitto/",
    "autosave_interval": 60,
    "max_inflight_messages": 20,
    "max_queued_messages": 10000,
    "max_packet_size": 1048576,
    "listener": "8883",
    "cafile": "/etc/mosquitto/certs/ca.crt",
    "certfile": "/etc/mosquitto/certs/broker.crt",
    "keyfile": "/etc/mosquitto/certs/broker.key",
}

_CONF = """\
# /etc/mosquitto/conf.d/bodycam.conf
per_listener_settings false
allow_anonymous false
acl_file {acl_file}

# Sessions and queued QoS 1 messages survive a restart (saved every autosave_interval seconds and
# on a clean shutdown; a crash loses what came after the last save, which the protocol tolerates).
persistence true
persistence_location {persistence_location}
autosave_interval {autosave_interval}

# The Receive Maximum the broker announces to clients; the devices lower their window to it.
max_inflight_messages {max_inflight_messages}
# Messages queued per offline or slow client. A device runs at most ~6 segments ahead of its
# receipts: with 256 KiB chunks and 12.5 MB segments that is ~300 messages per device for the
# receivers' session. Beyond this limit mosquitto DROPS QoS 1 messages (the protocol resends, but
# it costs a round trip), so keep it well above that.
max_queued_messages {max_queued_messages}
# A chunk message is chunk_kib*1024 + ~300 bytes; offers are a few KB. Larger packets are refused
# (announced to clients as Maximum Packet Size; a device whose chunks do not fit says so and stops).
max_packet_size {max_packet_size}

listener {listener}
cafile {cafile}
certfile {certfile}
keyfile {keyfile}
# crlfile /etc/mosquitto/certs/ca.crl
require_certificate true
# The certificate's CN is the username and the client id, whatever the client sends.
use_identity_as_username true
use_username_as_clientid true
tls_version tlsv1.2
"""

_DEVICES = """\
# Devices: the username is the certificate CN (= the device id). Patterns use %u: the certificate
# decides, not anything the client sends.
pattern write bodycam/+/%u/up/#
pattern write bodycam/+/%u/status
pattern write bodycam/+/%u/telemetry
pattern write bodycam/+/%u/events
pattern write bodycam/+/%u/cmd/result
pattern read  bodycam/+/%u/down/#
pattern read  bodycam/+/%u/cmd
# Home Assistant discovery: a device announces its entities with its own id as the node id, so it
# cannot rewrite another device's, and hears Home Assistant's birth message.
pattern write {ha}/+/%u/+/config
pattern read  {ha}/status
"""

_RECEIVERS_HEAD = """\
# Back-office receivers, by certificate CN (one certificate each, also within a shared group): read
# every device's uploads, answer on every downlink.
"""

_RECEIVER = """\
user {name}
topic read  bodycam/+/+/up/#
topic write bodycam/+/+/down/#
"""

_CONTROL_HEAD = """\
# The control room (fleet view, Home Assistant, commands): read what devices report, write commands,
# read the devices' discovery configs and send Home Assistant's birth (and last will) message.
# Commands are signed by the back office's command key as well, so this ACL is not their only guard.
# A program connected at the same time as another needs its own certificate: repeat the block.
"""

_CONTROL = """\
user {name}
topic read  bodycam/+/+/status
topic read  bodycam/+/+/telemetry
topic read  bodycam/+/+/events
topic read  bodycam/+/+/cmd/result
topic write bodycam/+/+/cmd
topic read  {ha}/+/+/+/config
topic readwrite {ha}/status
"""


def mosquitto_conf(**values) -> str:
    """The bodycam part of mosquitto.conf; ``values`` override :data:`PRODUCTION` (unknown keys are an error)."""
    unknown = set(values) - set(PRODUCTION)
    if unknown:
        raise TypeError(f"unknown mosquitto.conf values: {', '.join(sorted(unknown))}")
    return _CONF.format(**{**PRODUCTION, **values})


def acl_text(receivers: Sequence[str] = ("bo-recv-1", "bo-recv-2"), control_rooms: Sequence[str] = ("control-room",),
             homeassistant_prefix: str = "homeassistant") -> str:
    """The ACL: devices confined to their own namespace by certificate CN, then receivers and control rooms by name."""
    blocks = [_DEVICES.format(ha=homeassistant_prefix), _RECEIVERS_HEAD + "\n".join(
        _RECEIVER.format(name=name) for name in receivers)]
    blocks.append(_CONTROL_HEAD + "\n".join(_CONTROL.format(name=name, ha=homeassistant_prefix)
                                            for name in control_rooms))
    return "\n".join(blocks)
