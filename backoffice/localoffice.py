"""A back office on this machine, for the demo and benchmarks: throw-away broker, PKI and one receiver.

It wires the real parts (mosquitto with client certificates and the ACL of docs/BROKER.md, the real
receiver with its evidence store and receipt key) so that a laptop runs the complete chain a city runs
across several machines.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path

from comms.settings import MqttSettings
from evidence.keys import generate_receipt_key, load_device_public_keys, load_receipt_signing_key

from .localbroker import HOST, MOSQUITTO, Broker, Pki
from .receiver import Receiver, ReceiverThread, receiver_link
from .store import EvidenceStore

RECEIVER_ID = "bo-recv-1"


def client_settings(creds, port: int, **kw) -> MqttSettings:
    return MqttSettings(**{**dataclasses.asdict(MqttSettings()), "host": HOST, "port": port,
                           "ca_file": str(creds.ca), "cert_file": str(creds.cert), "key_file": str(creds.key),
                           "keepalive_s": 10, "reconnect_min_s": 0.2, "reconnect_max_s": 2.0, **kw})


class LocalBackOffice:
    """Broker + receiver under ``root``; ``device_settings(id)`` gives a device its MQTT settings."""

    def __init__(self, root: Path, device_pubs: list[Path]):
        self.root = Path(root)
        self.pki = Pki(self.root / "pki")
        self.broker = Broker(self.root / "broker", self.pki, [RECEIVER_ID])
        keys = self.root / "receipt-keys"
        if not (keys / "receipt.key").exists():
            keys.mkdir(parents=True, exist_ok=True)
            generate_receipt_key(keys)
        self.receipt_pub = keys / "receipt.pub"
        self.store = EvidenceStore(self.root / "store", self.root / "incoming")
        self._receipt_key = load_receipt_signing_key(keys / "receipt.key")
        self._devices = load_device_public_keys(device_pubs)
        self.link = self.thread = None

    def start(self) -> "LocalBackOffice":
        self.broker.start()
        creds = self.pki.issue(RECEIVER_ID)
        receiver = Receiver(self.store, self._devices, self._receipt_key, RECEIVER_ID,
                            max_segment_bytes=256 << 20, max_chunk_bytes=1 << 20)
        self.link = receiver_link(client_settings(creds, self.broker.port), RECEIVER_ID)
        self.thread = ReceiverThread(self.link, receiver)
        self.thread.start()
        self.link.start()
        deadline = time.monotonic() + 15
        while not self.thread.connected.is_set():
            if time.monotonic() > deadline:
                raise RuntimeError("the local receiver did not connect to the local broker")
            time.sleep(0.05)
        return self

    def device_settings(self, device_id: str) -> MqttSettings:
        return client_settings(self.pki.issue(device_id), self.broker.port)

    def stop(self) -> None:
        if self.thread is not None:
            self.thread.begin_stop()
        if self.link is not None:
            self.link.stop()
        if self.thread is not None:
            self.thread.stop()
        self.broker.stop()


def serve(root: Path, device_pubs: list[Path], device_ids: list[str], out=None) -> int:
    """Run a local back office until standard input closes (or SIGTERM): the demo's second program.

    Prints one JSON line when ready: the broker's port, the receipt key and store, and for each of
    ``device_ids`` the certificate paths it connects with; ``{"error": ...}`` when it cannot start.
    """
    out = out or sys.stdout
    if not Path(MOSQUITTO).exists():
        print(json.dumps({"error": "mosquitto is not installed (apt install mosquitto, as .ci/dev does)"}),
              file=out, flush=True)
        return 1
    office = LocalBackOffice(root, device_pubs).start()
    try:
        devices = {}
        for device_id in device_ids:
            creds = office.pki.issue(device_id)
            devices[device_id] = {"ca_file": str(creds.ca), "cert_file": str(creds.cert), "key_file": str(creds.key)}
        print(json.dumps({"host": HOST, "port": office.broker.port, "receipt_pub": str(office.receipt_pub),
                          "store": str(office.store.root), "devices": devices}), file=out, flush=True)
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        threading.Thread(target=lambda: (sys.stdin.read(), done.set()), name="StdinWatch", daemon=True).start()
        done.wait()
    finally:
        office.stop()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m backoffice.localoffice",
                                     description="A local back office (broker + receiver) for the demo.")
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--device-pub", action="append", required=True, type=Path)
    parser.add_argument("--device-id", action="append", default=[])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="office: %(levelname)s %(name)s: %(message)s")
    sys.exit(serve(args.root, args.device_pub, args.device_id))
