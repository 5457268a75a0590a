"""Fixtures for the install, unit and doctor tests: the repository's paths, tool checks, a device
config in a temporary directory, and a TLS "broker" on 127.0.0.1 that answers MQTT CONNECT."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import pwd
import shutil
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from evidence.keys import generate_device_key, generate_evidence_keys

REPO = Path(__file__).resolve().parents[2]
INSTALL_SH = REPO / "install.sh"
UNITS = REPO / "systemd"


def need_tool(name: str, package: str) -> str:
    """The tool's path, or skip the test naming the Debian package that provides it."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (apt-get install {package}; .ci/dev installs it)")
    return path


def current_user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


# --- a device's files -------------------------------------------------------------------------

@dataclass
class Device:
    """A device's config and files under a temporary directory, laid out as install.sh does."""

    root: Path
    config: Path
    spool: Path
    key: Path
    recipients: Path


@pytest.fixture
def device(tmp_path) -> Device:
    keys = tmp_path / "keys"
    keys.mkdir()
    generate_device_key(keys, device_id="cam-0042")
    office = tmp_path / "office"
    office.mkdir()
    evidence = generate_evidence_keys(office)
    spool = tmp_path / "spool"
    spool.mkdir()
    config = tmp_path / "agent.toml"
    write_config(config, tmp_path, spool, keys / "device.key", [str(evidence.recipient_path)])
    return Device(tmp_path, config, spool, keys / "device.key", evidence.recipient_path)


def write_config(path: Path, root: Path, spool: Path, key: Path, recipients: list[str], **extra) -> None:
    """A small valid config; ``extra`` adds [camera] keys (strings)."""
    camera = {"backend": "synthetic"} | extra
    path.write_text("\n".join([
        "[device]", 'id = "cam-0042"', 'site = "musterstadt"',
        "[camera]", *(f"{k} = {json.dumps(v)}" for k, v in camera.items()),
        "[evidence]", f"recipients = {json.dumps(recipients)}", f"device_key = {json.dumps(str(key))}",
        f"state_dir = {json.dumps(str(root / 'state'))}",
        "[storage]", f"spool_dir = {json.dumps(str(spool))}",
        f"audit_log = {json.dumps(str(root / 'audit' / 'audit.jsonl'))}",
        "warn_free_mib = 1.0", "critical_free_mib = 1.0", ""]), encoding="utf-8")


def add_segment(spool: Path, seq: int, age_s: float = 0.0, receipt: bool = False) -> None:
    """A sealed segment's files as the spool stores them (ciphertext, manifest, maybe a receipt)."""
    stem = f"cam-0042-{seq:010d}"
    (spool / f"{stem}.age").write_bytes(b"x" * 1000)
    manifest = spool / f"{stem}.manifest.json"
    manifest.write_text(json.dumps({"seq": seq}))
    then = time.time() - age_s
    os.utime(manifest, (then, then))
    if receipt:
        (spool / f"{stem}.receipt.json").write_text("{}")


#: Lines shown at the end of the run, also without -s (the chroot test's timings).
SUMMARY: list[str] = []


def pytest_terminal_summary(terminalreporter):
    if SUMMARY:
        terminalreporter.section("install tests")
        for line in SUMMARY:
            terminalreporter.write_line(line)


# --- certificates and a TLS broker on 127.0.0.1 -----------------------------------------------

@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path
    other_client_cert: Path
    other_client_key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(subject: str, issuer_key, issuer_name: x509.Name, *, ca: bool = False, server: bool = False):
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
            decipher_only=False), critical=True)
    cert = builder.sign(issuer_key or key, hashes.SHA256())
    return key, cert


def _write_pair(directory: Path, stem: str, key, cert) -> tuple[Path, Path]:
    cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca_key, ca_cert = _issue("Musterstadt Test CA", None, _name("Musterstadt Test CA"), ca=True)
    other_key, other_cert = _issue("Other CA", None, _name("Other CA"), ca=True)
    ca, _ = _write_pair(d, "ca", ca_key, ca_cert)
    other_ca, _ = _write_pair(d, "other-ca", other_key, other_cert)
    server = _write_pair(d, "server", *_issue("broker", ca_key, ca_cert.subject, server=True))
    client = _write_pair(d, "client", *_issue("cam-0042", ca_key, ca_cert.subject))
    other_client = _write_pair(d, "other-client", *_issue("cam-0042", other_key, other_cert.subject))
    return Pki(ca, *server, *client, other_ca, *other_client)


class FakeBrokerThread(threading.Thread):
    """Accepts TLS connections that present a client certificate signed by ``ca``; answers CONNECT.

    Stands in for mosquitto with ``require_certificate true``. It reads one CONNECT, records its client
    id and answers CONNACK with ``return_code``. Stopped by :meth:`stop` (joins with a timeout).
    """

    def __init__(self, cert: Path, key: Path, ca: Path, return_code: int = 0):
        super().__init__(name="FakeBrokerThread", daemon=True)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.context.load_verify_locations(ca)
        self.return_code = return_code
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.client_ids: list[str] = []
        self.handshake_errors: list[str] = []
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                raw, _ = self.listener.accept()
            except TimeoutError:
                continue
            with raw:
                self._serve(raw)

    def _serve(self, raw: socket.socket) -> None:
        raw.settimeout(5)
        try:
            with self.context.wrap_socket(raw, server_side=True) as tls:
                header = tls.recv(2)
                body = _recv_exactly(tls, header[1])
                id_len = int.from_bytes(body[10:12], "big")
                self.client_ids.append(body[12:12 + id_len].decode())
                tls.sendall(bytes([0x20, 2, 0, self.return_code]))
                tls.recv(2)  # DISCONNECT, or the client closing
        except (ssl.SSLError, OSError) as exc:
            self.handshake_errors.append(str(exc))

    def stop(self) -> None:
        self._stopping.set()
        self.join(5)
        self.listener.close()


def _recv_exactly(sock, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


@pytest.fixture
def broker(pki):
    """Factory: ``broker(return_code=0, ca=pki.ca)`` -> a running FakeBrokerThread, stopped afterwards."""
    started = []

    def start(return_code: int = 0, ca: Path | None = None) -> FakeBrokerThread:
        thread = FakeBrokerThread(pki.server_cert, pki.server_key, ca or pki.ca, return_code)
        thread.start()
        started.append(thread)
        return thread

    yield start
    for thread in started:
        thread.stop()
