"""Probe a broker the way the device connects: TCP, TLS with the device's certificate, one MQTT CONNECT.

``bodycam doctor`` uses it to tell which part of the connection fails. The probe connects *as* the
device (the broker makes the certificate's CN the client id, docs/BROKER.md) and asks to keep the
session (MQTT 3.1.1, clean session 0), so the receipts queued for the device stay and a running
agent only reconnects.

Why not paho: with TLS 1.3 the broker checks the client certificate after the client's handshake is
done, so a rejected certificate arrives as a TLS alert on the first read. paho turns every error on a
read into a bare "connection lost" (the alert's reason only goes to its log), and the doctor must
say which certificate was refused. A CONNECT and its CONNACK are a few bytes; they are written here.
"""

from __future__ import annotations

import socket
import ssl

from .settings import MqttSettings

TIMEOUT_S = 5.0
#: MQTT 3.1.1 CONNACK return codes other than 0 (accepted).
CONNACK_REASONS = {1: "unacceptable protocol version", 2: "client id rejected", 3: "server unavailable",
                   4: "bad user name or password", 5: "not authorised"}


class BrokerProtocolError(Exception):
    """The peer did not answer like an MQTT broker."""


def tls_context(settings: MqttSettings) -> ssl.SSLContext:
    """Verify the broker against the configured CA only, and present the device's certificate.

    Raises ``ssl.SSLError`` when certificate and key do not fit together, ``OSError`` when a file
    cannot be read.
    """
    context = ssl.create_default_context(cafile=settings.ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.resolved("cert_file"), settings.resolved("key_file"))
    return context


def probe_broker(settings: MqttSettings, context: ssl.SSLContext, client_id: str,
                 timeout: float = TIMEOUT_S) -> int:
    """Connect, complete TLS and an MQTT CONNECT; returns the CONNACK's return code (0: accepted).

    Raises what the connection raises (``socket.gaierror``, ``ssl.SSLCertVerificationError``, another
    ``ssl.SSLError`` for a certificate the broker rejects, ``ConnectionRefusedError``, ``TimeoutError``)
    or :class:`BrokerProtocolError`. ``settings.client_id``, when set, wins over ``client_id``, as in
    comms.mqtt.MqttLink.
    """
    host, port = settings.host, settings.port
    with socket.create_connection((host, port), timeout=timeout) as raw, \
            context.wrap_socket(raw, server_hostname=host) as tls:
        tls.sendall(connect_packet(settings.client_id or client_id))
        code = read_connack(tls)
        tls.sendall(b"\xe0\x00")  # DISCONNECT
    return code


def connect_packet(client_id: str) -> bytes:
    """An MQTT 3.1.1 CONNECT: keep the session (clean session 0), 10 s keep-alive, no user name."""
    body = _mqtt_string("MQTT") + bytes([4, 0x00, 0, 10]) + _mqtt_string(client_id)
    return b"\x10" + _remaining_length(len(body)) + body


def _mqtt_string(text: str) -> bytes:
    data = text.encode("utf-8")
    return len(data).to_bytes(2, "big") + data


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def read_connack(sock) -> int:
    data = b""
    while len(data) < 4:
        chunk = sock.recv(4 - len(data))
        if not chunk:
            raise BrokerProtocolError("the broker closed the connection without answering CONNECT")
        data += chunk
    if data[0] != 0x20 or data[1] != 2:
        raise BrokerProtocolError(f"unexpected answer to CONNECT ({data.hex()})")
    return data[3]
