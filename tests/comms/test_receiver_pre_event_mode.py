"""The receiver stores segments whose manifests carry ``pre_event_mode`` and those of older devices without it."""

from __future__ import annotations

import json

import pytest

from backoffice.receiver import Receiver
from backoffice.store import EvidenceStore
from camera.synthetic import SyntheticSource
from comms import protocol
from comms.transfer import BytesSource, SegmentTransfer
from comms_env import DeviceEnv
from evidence.keys import generate_receipt_key, load_device_public_keys, load_receipt_signing_key
from evidence.seal import Manifest
from evidence.verify import verify_paths

OFFER = protocol.up_topic("duisburg", "kod-07", "offer")
CHUNK = protocol.up_topic("duisburg", "kod-07", "chunk")


@pytest.fixture
def device(tmp_path):
    env = DeviceEnv(tmp_path / "dev")
    yield env
    env.close()


def deliver(rx: Receiver, device: DeviceEnv, stem: str) -> dict:
    info, stored = device.spool.info(stem), device.spool.read(stem)
    transfer = SegmentTransfer(stem, info.seq, info.ciphertext_sha256, info.ciphertext_bytes, 8192)
    transfer.loaded(BytesSource(stored.ciphertext), stored.manifest)
    replies = rx.handle(OFFER, transfer.offer().encode())
    transfer.receiver_has(set())
    while (chunk := transfer.next_chunk()) is not None:
        replies += rx.handle(CHUNK, chunk[1])
    [receipt] = [r for r in replies if r.topic.endswith("/receipt")]
    return json.loads(receipt.payload)


def test_manifests_with_and_without_the_mode_are_stored_and_verify(device, tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    generate_receipt_key(keys)
    devices = load_device_public_keys([device.device_pub])
    rx = Receiver(EvidenceStore(tmp_path / "store", tmp_path / "incoming"), devices,
                  load_receipt_signing_key(keys / "receipt.key"), "bo-recv-1", max_segment_bytes=1 << 24,
                  max_chunk_bytes=1 << 20)
    old = device.seal_random(1)[0].stem  # as a device before the field wrote it
    device.record(SyntheticSource(width=160, height=120, fps=30.0, bitrate=300_000, gop_frames=30, realtime=False),
                  seconds=1)
    stems = sorted(p.name.removesuffix(".manifest.json") for p in device.spool.directory.glob("*.manifest.json"))
    new = stems[-1]
    modes = {stem: Manifest.parse(device.spool.read(stem).manifest).pre_event_mode for stem in (old, new)}
    assert modes == {old: None, new: "standby"}
    for stem in stems:
        assert deliver(rx, device, stem)["chain"] in ("first", "linked")
    stored = sorted(p for p in rx.store.root.rglob("*.manifest.json"))
    assert len(stored) == len(stems)
    report = verify_paths([rx.store.root], devices)
    assert report.ok, report.problems
