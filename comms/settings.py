"""Config sections for everything across the wire: [mqtt], [uplink] and [commands].

Frozen dataclasses declared with :func:`base.config.option`, assembled by the device's config and the
back office's settings, and validated by the one loader. Both programs connect with :class:`MqttSettings`.

Paths to secrets (``key_file``, ``receipt_key``) may be relative: they are then looked up in
``$CREDENTIALS_DIRECTORY`` (systemd's ``LoadCredential=``) when that is set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from base.config import option


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

    def problems(self):
        if self.reconnect_min_s > self.reconnect_max_s:
            yield "reconnect_min_s", (f"({self.reconnect_min_s:g}) must not exceed "
                                      f"reconnect_max_s ({self.reconnect_max_s:g})")
        if self.client_id and (len(self.client_id) > 64 or not self.client_id.isascii()
                               or any(c in self.client_id for c in "+#/ ")):
            yield "client_id", f"{self.client_id!r} must be up to 64 ASCII characters without '+', '#', '/' or spaces"

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

    def problems(self):
        if self.chunk_kib % 4:
            yield "chunk_kib", f"= {self.chunk_kib} must be a multiple of 4 (whole pages)"


@dataclass(frozen=True)
class CommandsConfig:
    enabled: bool = option(True, "Accept remote commands signed by the back office's command key.")
    public_key: str = option("/etc/bodycam/keys/command.pub", "The back office's command public key "
                                                              "('ed25519:<base64>' line).")
    max_age_seconds: float = option(60.0, "Reject commands whose time stamp is further off than this.",
                                    min=5.0, max=3600.0)
    pre_event_max_seconds: float = option(30.0, "Highest pre-event window a remote 'set' may choose (policy).",
                                          min=0.0, max=120.0)
