"""A throw-away broker on 127.0.0.1 for the demo, the tests and the benchmarks: a PKI and a mosquitto process.

Not for production: a city's broker is set up by its IT as docs/BROKER.md describes; this one
follows the same rules so that everything exercised locally is what runs in the field.

Everything lives in one temporary directory and on 127.0.0.1. :class:`Pki` makes a CA and issues
broker and client certificates with ``cryptography`` (EC P-256: quick to make, quick handshakes).
:class:`Broker` writes the mosquitto config and ACL of ``docs/BROKER.md`` (backoffice.brokerconf: client
certificates required, the certificate CN becomes username and client id, ACL patterns on ``%u``) with
local paths, starts mosquitto on a free port, and can be killed with SIGKILL and restarted on the same
port and persistence directory.

mosquitto's ``listener 0`` does not mean "pick a free port", so a free port is found by binding port
0 in Python and handing the number over; the short race with other processes is acceptable in tests.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .brokerconf import acl_text, mosquitto_conf

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Credentials:
    """Paths of one party's certificate and key, plus the CA that vouches for it."""

    ca: Path
    cert: Path
    key: Path
    cn: str


class Pki:
    """A throw-away certificate authority in ``directory`` (demo and tests; never a city's CA)."""

    def __init__(self, directory: Path, name: str = "bodycam demo CA"):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = _dt.datetime.now(_dt.timezone.utc)
        self._cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                      .public_key(self._key.public_key()).serial_number(x509.random_serial_number())
                      .not_valid_before(now - _dt.timedelta(minutes=5)).not_valid_after(now + _dt.timedelta(days=2))
                      .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                      .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                   content_commitment=False, key_encipherment=False,
                                                   data_encipherment=False, key_agreement=False,
                                                   encipher_only=False, decipher_only=False), critical=True)
                      .sign(self._key, hashes.SHA256()))
        self.ca_path = self.directory / "ca.crt"
        self.ca_path.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, cn: str, *, server: bool = False) -> Credentials:
        """A certificate with CN ``cn``: for the broker (``server``; SAN 127.0.0.1 and localhost) or a client."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = _dt.datetime.now(_dt.timezone.utc)
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
                   .issuer_name(self._cert.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - _dt.timedelta(minutes=5)).not_valid_after(now + _dt.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                                         else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in cn)
        cert_path, key_path = self.directory / f"{stem}.crt", self.directory / f"{stem}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
        return Credentials(self.ca_path, cert_path, key_path, cn)


class Broker:
    """One mosquitto process with TLS client certificates, an ACL and persistence, on 127.0.0.1.

    ``kill()`` is SIGKILL (nothing is saved beyond the last autosave); ``start()`` again reuses the port,
    config and persistence directory, as a broker restarted by systemd would.
    """

    def __init__(self, directory: Path, pki: Pki, receivers: list[str], *, port: int | None = None,
                 autosave_interval: int = 1, extra: str = "", control_rooms: Sequence[str] = ("control-room",),
                 acl: str | None = None):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.server = pki.issue("localhost", server=True)
        self.acl_path = self.directory / "acl"
        self.acl_path.write_text(acl if acl is not None else acl_text(receivers, control_rooms))
        self.persistence = self.directory / "data"
        self.persistence.mkdir(exist_ok=True)
        self.log_path = self.directory / "mosquitto.log"
        self.conf_path = self.directory / "mosquitto.conf"
        user = "user root\n" if os.geteuid() == 0 else ""  # as root, mosquitto would switch to 'mosquitto'
        # docs/BROKER.md's configuration with local paths, port and sizes (the largest MQTT packet: tests send
        # oversize chunks to see the receiver refuse them), plus a log file.
        self.conf_path.write_text(
            user + mosquitto_conf(acl_file=str(self.acl_path), persistence_location=f"{self.persistence}/",
                                  autosave_interval=autosave_interval, max_queued_messages=100000,
                                  max_packet_size=268435455, listener=f"{self.port} {HOST}", cafile=str(pki.ca_path),
                                  certfile=str(self.server.cert), keyfile=str(self.server.key))
            + "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
            f"log_dest file {self.log_path}\n{extra}")
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self, timeout: float = 10.0) -> None:
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("mosquitto is already running")
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.conf_path)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace")
                raise RuntimeError(f"mosquitto exited with {self.process.returncode}: {err.strip()} "
                                   f"(log: {self.log_tail()})")
            try:
                with socket.create_connection((HOST, self.port), timeout=0.2):
                    self.starts += 1
                    return
            except OSError:
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"mosquitto did not listen on {HOST}:{self.port} within {timeout} s")

    def kill(self) -> None:
        """SIGKILL: the broker dies without saving, like a power cut."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self._close()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not end (mosquitto saves its state on SIGTERM)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close()

    def _close(self) -> None:
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "<no log>"
