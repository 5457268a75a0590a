"""The two ends of an evidence transfer for tests and the benchmark: a device with a real spool, a back office.

:class:`DeviceEnv` is the device's evidence stage as the agent opens it (agent.demo.prepare_workdir +
EvidenceStage): real keys, real sealed segments in a real spool, a real signed audit log. Segments
come from the synthetic camera through the recorder (:meth:`record`), or, where only size matters,
from random frame bytes sealed by the same Sealer (:meth:`seal_random`): the ciphertext is random
either way. :class:`BackOffice` is one receiver process's worth of parts: store, receipt key,
Receiver, its MQTT link and thread. :func:`uplink_for` wires an UplinkThread to a device.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from agent import config
from agent.demo import prepare_workdir
from evidence.keys import ReceiptPublicKey, generate_receipt_key, load_device_public_keys, load_receipt_public_key, load_receipt_signing_key
from agent.recorder import Action, Recorder, Trigger
from agent.sealing import EvidenceStage, SealerThread, clock_sync_state
from camera.frames import EncodedFrame, StreamInfo
from camera.ring import PreEventRing
from camera.segment import Segment
from comms.mqtt import MqttLink
from backoffice.receiver import Receiver, ReceiverThread, receiver_link
from comms.settings import MqttSettings, UplinkSettings
from backoffice.store import EvidenceStore
from comms.uplink import UplinkThread

from mqtt_harness import HOST, Credentials
from tests.support import wait_until  # noqa: F401  (the comms tests import it from here)

FPS = 30
#: Lines the fault test wants shown at the end of the run, also without ``-s`` (see conftest.py).
SUMMARY: list[str] = []




def mqtt_settings(creds: Credentials, port: int, **kw) -> MqttSettings:
    base = dict(host=HOST, port=port, ca_file=str(creds.ca), cert_file=str(creds.cert), key_file=str(creds.key),
                client_id="", keepalive_s=5, session_expiry_s=600, reconnect_min_s=0.1, reconnect_max_s=1.0)
    base.update(kw)
    return MqttSettings(**base)


class DeviceEnv:
    """One device's evidence stage in ``root`` (keys, spool, audit log), as the agent opens it."""

    def __init__(self, root: Path, device_id: str = "kod-07", site: str = "duisburg", purge_policy: str = "on_ack"):
        self.root = Path(root)
        self.device_id, self.site = device_id, site
        cfg = config.replace(config.Config(), "device", id=device_id, site=site)
        cfg = prepare_workdir(cfg, self.root)
        self.cfg = config.replace(cfg, "storage", purge_policy=purge_policy)
        self.stage = EvidenceStage(self.cfg)
        self.spool = self.stage.spool
        self.audit = self.stage.audit
        self.device_pub = self.root / "device" / "keys" / "device.pub"
        self.evidence_key = self.root / "backoffice" / "evidence.key"
        self._index = 0

    def seal_random(self, count: int, size: int = 40_000, incident: str | None = None,
                    final_last: bool = True, officer: str | None = None) -> list:
        """One incident of ``count`` segments of about ``size`` bytes of random frame data, sealed into the spool."""
        incident = incident or f"20260101T0000{self._index // 60:02d}Z-{os.urandom(3).hex()}"
        sealed_all = []
        frames_n = 10
        per = max(1, size // frames_n)
        info = StreamInfo("h264", 160, 120, float(FPS), 300_000, FPS, "test-random")
        for k in range(count):
            base = 1_750_000_000 + self._index * frames_n / FPS
            frames = tuple(EncodedFrame(data=os.urandom(per), pts_us=round((self._index * frames_n + i) * 1e6 / FPS),
                                        keyframe=i == 0, wall_time=base + i / FPS, seq=self._index * frames_n + i)
                           for i in range(frames_n))
            segment = Segment(incident_id=incident, index=k, frames=frames, stream=info,
                              final=final_last and k == count - 1)
            sealed = self.stage.sealer.seal(segment, clock_sync=clock_sync_state(), officer=officer)
            self.spool.store(sealed)
            self.stage.sealer.commit(sealed)
            sealed_all.append(sealed)
            self._index += 1
        return sealed_all

    def record(self, source, seconds: int = 3) -> list[Segment]:
        """A real incident from the synthetic camera, sealed by the SealerThread (as tests/agent does)."""
        sealer = SealerThread(self.stage)
        sealer.start()
        segments = []

        def sink(segment):
            segments.append(segment)
            sealer.put(segment)

        frames = source.frames()
        recorder = Recorder(source.info, PreEventRing(1.0, 16 << 20), 2.0, sink, gate=self.stage.storage_gate,
                            request_keyframe=source.request_keyframe)
        recorder.subscribe(self.stage.record_event)
        for _ in range(45):
            recorder.handle_frame(next(frames))
        recorder.handle_trigger(Trigger(Action.START, "button"))
        for _ in range(seconds * FPS):
            recorder.handle_frame(next(frames))
        recorder.handle_trigger(Trigger(Action.STOP, "button"))
        sealer.stop()
        if sealer.fault is not None or sealer.sealed != len(segments):
            raise RuntimeError(f"sealing failed: {sealer.fault}")
        return segments

    def audit_events(self) -> list[dict]:
        with open(self.cfg.storage.audit_log, "rb") as fh:
            return [json.loads(line) for line in fh]

    def close(self) -> None:
        self.stage.close()


class BackOffice:
    """A receiver with its store, receipt key and MQTT link; ``stop()`` and a new one with the same root resumes."""

    def __init__(self, root: Path, devices: list[Path], settings: MqttSettings, receiver_id: str = "bo-recv-1",
                 share_group: str = "", store_root: Path | None = None, max_segment_bytes: int = 64 << 20,
                 max_chunk_bytes: int = 1 << 20, queue_messages: int = 64):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        shared = Path(store_root) if store_root else self.root
        keys = shared / "receipt-keys"
        if not (keys / "receipt.key").exists():
            keys.mkdir(parents=True, exist_ok=True)
            generate_receipt_key(keys)
        self.receipt_pub_path = keys / "receipt.pub"
        self.receipt_pub: ReceiptPublicKey = load_receipt_public_key(self.receipt_pub_path)
        self.store = EvidenceStore(shared / "store", shared / "incoming")
        self.receiver = Receiver(self.store, load_device_public_keys(devices), load_receipt_signing_key(keys /
                                 "receipt.key"), receiver_id, max_segment_bytes=max_segment_bytes,
                                 max_chunk_bytes=max_chunk_bytes)
        self.link = receiver_link(settings, receiver_id, queue_messages)
        self.thread = ReceiverThread(self.link, self.receiver, share_group=share_group, gap_report_s=3600)
        self.running = False

    def start(self, wait: bool = True) -> BackOffice:
        self.thread.start()
        self.link.start()
        self.running = True
        if wait:
            wait_until(self.thread.connected.is_set, 10, what="the receiver to connect")
        return self

    def stop(self) -> None:
        if self.running:
            self.thread.begin_stop()
            self.link.stop()
            self.thread.stop()
            self.running = False

    def stored(self, suffix: str = ".age") -> list[Path]:
        """Files in the evidence store with ``suffix`` (receipts live in .receipts/)."""
        return sorted(p for p in self.store.root.rglob(f"*{suffix}") if p.is_file())


@dataclass
class Uplink:
    link: MqttLink
    thread: UplinkThread

    def start(self) -> Uplink:
        self.thread.start()
        self.link.start()
        return self

    def stop(self) -> None:
        if self.thread.ident is not None:
            self.thread.stop()
        self.link.stop()


def test_uplink_settings(**kw) -> UplinkSettings:
    base = dict(chunk_kib=8, window=8, segments_ahead=2, receipt_timeout_s=2.0, offer_backoff_max_s=4.0,
                reject_retry_s=30.0, retry_min_s=0.1, receipt_key="<given>")
    base.update(kw)
    return UplinkSettings(**base)


test_uplink_settings.__test__ = False  # a helper, not a test


def uplink_for(device: DeviceEnv, settings: MqttSettings, receipt_pub: ReceiptPublicKey, *,
               uplink: UplinkSettings | None = None, audit: bool = True) -> Uplink:
    uplink = uplink or test_uplink_settings()
    link = MqttLink(settings, device.device_id, window=uplink.window,
                    will=(f"bodycam/{device.site}/{device.device_id}/status", b"offline"))
    thread = UplinkThread(link, device.spool, site=device.site, device_id=device.device_id, settings=uplink,
                          receipt_key=receipt_pub, purge_policy=device.cfg.storage.purge_policy,
                          audit_log=device.audit if audit else None)
    return Uplink(link, thread)


__all__ = ["SUMMARY", "BackOffice", "DeviceEnv", "Uplink", "mqtt_settings", "test_uplink_settings", "uplink_for",
           "wait_until"]
