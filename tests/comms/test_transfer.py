"""Device uplink to back-office receiver over a real mosquitto: the happy path and the hard cases."""

from __future__ import annotations

import json
import shutil
import time

import pytest

from evidence import audit
from evidence.audit import verify_log
from evidence.export import export_incident
from evidence.keys import generate_receipt_key, load_device_public_keys, load_evidence_identities, load_receipt_signing_key
from evidence.verify import verify_paths
from comms import protocol
from evidence.receipts import sign_receipt
from comms_env import DeviceEnv, test_uplink_settings, wait_until


def audit_order(device, stem: str) -> list[str]:
    return [e["event"] for e in device.audit_events() if e["fields"].get("stem") == stem]


def test_segments_arrive_verify_and_are_deleted_only_after_their_receipt(world, small_source):
    device = world.device()
    segments = device.record(small_source(), seconds=4)
    stems = [i.stem for i in device.spool.pending()]
    assert len(stems) == len(segments) >= 2
    office = world.backoffice([device])
    up = world.uplink(device, office.receipt_pub)
    wait_until(lambda: not device.spool.pending() and not device.spool.acknowledged(), 30,
               what="every segment acknowledged and purged")

    # The store holds each segment once, `bodycam verify` accepts it, `bodycam export` plays it.
    ages = office.stored(".age")
    assert sorted(p.name for p in ages) == sorted(f"{s}.age" for s in stems)
    devices = load_device_public_keys([device.device_pub])
    report = verify_paths([office.store.root], devices)
    assert report.ok, report.lines()
    incident = segments[0].incident_id
    assert all(p.parent.name == incident and p.parent.parent.name == device.device_id for p in ages)
    result = export_incident([office.store.root], devices=devices, out=world.tmp / "out.mp4", incident_id=incident,
                             identities=load_evidence_identities(device.evidence_key))
    assert result.complete and result.mp4_path.stat().st_size > 0

    # Receipts: signed, stored beside the evidence, the chain checked at arrival.
    receipts = [json.loads(office.store.read_receipt(device.site, device.device_id, s)) for s in stems]
    assert [r["chain"] for r in receipts][0] == "first"
    assert all(r["chain"] in ("linked", "pending") for r in receipts[1:])

    # The device's audit log: uploaded -> acknowledged -> purged, for every segment, and it verifies.
    for stem in stems:
        order = [e for e in audit_order(device, stem) if e != audit.SEGMENT_SEALED]
        assert order == [audit.SEGMENT_UPLOADED, audit.SEGMENT_ACKNOWLEDGED, audit.SEGMENT_PURGED], (stem, order)
    public = next(iter(devices.values())).key
    assert verify_log(device.cfg.storage.audit_log, public).ok
    wait_until(lambda: up.thread.status.segments_purged == len(stems), 2, what="the status snapshot")
    status = up.thread.status
    assert status.segments_acknowledged == len(stems) == status.segments_purged
    assert status.last_receipt_stem == stems[-1] and status.state == "idle" and status.fault is None
    assert status.backlog_segments == 0 and status.link_up


def test_when_needed_policy_keeps_acknowledged_segments_on_the_card(world):
    device = world.device(purge_policy="when_needed")
    device.seal_random(3, size=30_000)
    office = world.backoffice([device])
    world.uplink(device, office.receipt_pub)
    wait_until(lambda: not device.spool.pending(), 20, what="all acknowledged")
    assert len(device.spool.acknowledged()) == 3
    assert len(office.stored(".age")) == 3
    assert not any(e["event"] == audit.SEGMENT_PURGED for e in device.audit_events())


@pytest.mark.system  # a fault scenario: the receiver offline, then catching up (~4 s)
def test_receiver_offline_the_device_keeps_everything_and_catches_up(world):
    device = world.device()
    device.seal_random(3, size=30_000)
    office = world.backoffice([device])          # subscribes once (persistent session) ...
    office.stop()                                # ... then goes away for a while
    up = world.uplink(device, office.receipt_pub, uplink=test_uplink_settings(receipt_timeout_s=0.5,
                                                                              offer_backoff_max_s=1.0))
    time.sleep(3.0)
    assert len(device.spool.pending()) == 3      # nothing deleted, nothing acknowledged
    assert up.thread.status.chunks_sent == 0     # no chunk is sent before a receiver said what it lacks
    assert up.thread.status.state in ("offering", "receiver_silent")
    device.seal_random(2, size=30_000)           # recording goes on meanwhile
    returned = world.backoffice([device], root_name="backoffice-again")
    wait_until(lambda: not device.spool.pending() and not device.spool.acknowledged(), 30,
               what="catch-up after the receiver returned")
    assert len(returned.stored(".age")) == 5
    assert verify_paths([returned.store.root], load_device_public_keys([device.device_pub])).ok


def test_a_segment_the_card_corrupts_is_reported_kept_and_the_others_still_go(world):
    device = world.device()
    sealed = device.seal_random(3, size=40_000)
    bad = device.spool.directory / sealed[1].ciphertext_name
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit flipped on the card
    bad.write_bytes(bytes(data))
    office = world.backoffice([device])
    up = world.uplink(device, office.receipt_pub)
    wait_until(lambda: [i.stem for i in device.spool.pending()] == [sealed[1].stem], 30,
               what="the two good segments acknowledged and purged")
    assert "SD card may be failing" in (up.thread.status.fault or "")
    assert bad.read_bytes() == bytes(data)  # kept as it is, for IT to examine; never sent, never deleted
    assert sorted(p.name for p in office.stored(".age")) == sorted(s.ciphertext_name for s in (sealed[0], sealed[2]))


@pytest.mark.parametrize("forgery", ["wrong key", "wrong hash", "other device", "garbage"])
def test_a_forged_receipt_never_deletes_anything(world, forgery):
    device = world.device()
    sealed = device.seal_random(1, size=20_000)[0]
    office = world.backoffice([device], start=False)  # the real receiver never runs: only forgeries arrive
    up = world.uplink(device, office.receipt_pub)
    wait_until(lambda: up.thread.status.offers_sent >= 1, 10, what="the uplink to offer the segment")
    manifest_sha = sealed.manifest_sha256
    fields = dict(device_id=device.device_id, site=device.site, stem=sealed.stem, seq=sealed.seq,
                  incident_id=sealed.incident_id, ciphertext_sha256=sealed.ciphertext_sha256,
                  ciphertext_bytes=len(sealed.ciphertext), manifest_sha256=manifest_sha, receiver_id="bo-recv-1",
                  chain="first", received_at=time.time())
    if forgery == "wrong key":
        keys = world.tmp / "forger"
        keys.mkdir()
        generate_receipt_key(keys)
        forged = sign_receipt(load_receipt_signing_key(keys / "receipt.key"), **fields)
    else:
        key = load_receipt_signing_key(world.tmp / "shared" / "receipt-keys" / "receipt.key")
        if forgery == "wrong hash":
            forged = sign_receipt(key, **{**fields, "ciphertext_sha256": "0" * 64})
        elif forgery == "other device":
            forged = sign_receipt(key, **{**fields, "device_id": "kod-08"})
        else:
            forged = b'{"format":"bodycam-receipt/1"}\n'
    from test_broker_security import Client
    sender = Client(world.settings_for("bo-recv-2"), "bo-recv-2")
    try:
        sender.publish(protocol.down_topic(device.site, device.device_id, protocol.RECEIPT), forged)
        wait_until(lambda: up.thread.status.receipts_rejected >= 1, 10, what="the forged receipt to be rejected")
    finally:
        sender.stop()
    assert [i.stem for i in device.spool.pending()] == [sealed.stem]
    assert not device.spool.acknowledged()
    assert "nothing deleted" in up.thread.status.fault
    assert not any(e["event"] in (audit.SEGMENT_ACKNOWLEDGED, audit.SEGMENT_PURGED) for e in device.audit_events())


def test_unknown_devices_bad_signatures_and_malformed_chunks_are_rejected_and_the_receiver_goes_on(world):
    enrolled = world.device("kod-07")
    stranger = world.device("kod-08")              # has a certificate, but its key is not enrolled
    enrolled.seal_random(2, size=20_000)
    stranger.seal_random(1, size=20_000)
    office = world.backoffice([enrolled])
    up_stranger = world.uplink(stranger, office.receipt_pub)
    wait_until(lambda: office.receiver.counts["rejected_unknown_device"] >= 1, 10, what="unknown device rejected")
    wait_until(lambda: up_stranger.thread.status.state == "paused", 10, what="the stranger to pause")
    assert "unknown_device" in up_stranger.thread.status.fault
    assert len(stranger.spool.pending()) == 1

    from test_broker_security import Client
    forger = Client(world.settings_for("kod-07"), "kod-07-forger")
    try:
        topic = protocol.up_topic("duisburg", "kod-07", protocol.OFFER)
        chunk_topic = protocol.up_topic("duisburg", "kod-07", protocol.CHUNK)
        forger.publish(topic, b"not json")
        forger.publish(chunk_topic, b"BCCH\x01\xff\xffgarbage")
        forger.publish(chunk_topic, b"x" * (2 << 20))  # oversize
        # An offer whose manifest was altered after signing.
        info = enrolled.spool.pending()[0]
        stored = enrolled.spool.read(info.stem)
        doc = json.loads(stored.manifest)
        doc["incident_id"] = "tampered"
        from evidence.seal import canonical_json
        altered = canonical_json(doc) + b"\n"
        offer = protocol.Offer(info.stem, info.seq, info.ciphertext_bytes, info.ciphertext_sha256, 8192, altered)
        forger.publish(topic, offer.encode())
    finally:
        forger.stop()
    wait_until(lambda: office.receiver.counts["rejected_bad_signature"] >= 1, 10, what="bad signature rejected")
    counts = office.receiver.counts
    assert counts["rejected_malformed"] >= 2 and counts["rejected_oversize"] >= 1
    # ... and the receiver still works for the enrolled device.
    world.uplink(enrolled, office.receipt_pub)
    wait_until(lambda: not enrolled.spool.pending(), 20, what="the enrolled device's upload")
    assert len(office.stored(".age")) == 2 and office.thread.is_alive()


def test_two_receivers_share_the_load_of_several_devices(world, settings_for):
    devices = [world.device(f"kod-{n:02d}") for n in (7, 8, 9)]
    for d in devices:
        d.seal_random(4, size=60_000)
    offices = [world.backoffice(devices, f"bo-recv-{n}", share_group="receivers", root_name=f"bo-{n}")
               for n in (1, 2)]
    ups = [world.uplink(d, offices[0].receipt_pub) for d in devices]
    wait_until(lambda: all(not d.spool.pending() and not d.spool.acknowledged() for d in devices), 30,
               what="all devices drained")
    ages = offices[0].stored(".age")  # one shared store
    assert len(ages) == 12 and len({p.name for p in ages}) == 12
    assert verify_paths([offices[0].store.root], load_device_public_keys([d.device_pub for d in devices])).ok
    handled = [o.receiver.counts["chunks"] + o.receiver.counts["offers"] for o in offices]
    assert all(h > 0 for h in handled), handled  # both receivers did part of the work
    assert sum(o.receiver.counts["stored"] for o in offices) == 12  # each segment stored by exactly one
    assert all(u.thread.status.fault is None for u in ups)


@pytest.fixture
def strict_broker(tmp_path, pki):
    """A broker with a small Receive Maximum (max_inflight_messages) and a packet size limit."""
    from mqtt_harness import Broker
    b = Broker(tmp_path / "strict", pki, ["bo-recv-1"], extra="max_inflight_messages 3\nmax_packet_size 40000\n")
    b.start()
    yield b
    b.kill()


def test_the_window_follows_the_brokers_receive_maximum_and_packet_limit(world, strict_broker):
    device = world.device()
    device.seal_random(3, size=200_000)
    office = world.backoffice([device], port=strict_broker.port)
    up = world.uplink(device, office.receipt_pub, port=strict_broker.port,
                      uplink=test_uplink_settings(chunk_kib=32, window=16))
    wait_until(lambda: not device.spool.pending() and not device.spool.acknowledged(), 30, what="upload")
    assert up.thread.status.window == 3 and up.thread.status.disconnects == 0  # never over the broker's limit
    assert "exceeded" not in strict_broker.log_tail(200).lower()
    # Chunks larger than the broker's packet limit: refused at once with a fault that says what to change.
    device.seal_random(1, size=50_000)
    too_big = world.uplink(world.device("kod-08"), office.receipt_pub, port=strict_broker.port,
                           uplink=test_uplink_settings(chunk_kib=64))
    wait_until(lambda: too_big.thread.status.state == "refused", 10, what="the refusal")
    assert "uplink.chunk_kib" in too_big.thread.status.fault


def test_a_segment_in_conflict_is_parked_on_the_device_and_the_next_ones_go_on(world):
    device = world.device()
    first = device.seal_random(1, size=20_000)[0]
    office = world.backoffice([device])
    up = world.uplink(device, office.receipt_pub)
    wait_until(lambda: not device.spool.pending() and not device.spool.acknowledged(), 30, what="the first upload")
    up.stop()
    # The device loses its chain state and starts again at seq 1: another segment under a stored stem.
    keys = world.tmp / "forked" / "device" / "keys"
    keys.mkdir(parents=True)
    for name in ("device.key", "device.pub"):
        shutil.copy(device.device_pub.with_name(name), keys / name)
    forked = DeviceEnv(world.tmp / "forked", device.device_id, device.site)
    try:
        again, after = forked.seal_random(2, size=20_000)
        assert again.stem == first.stem
        up = world.uplink(forked, office.receipt_pub)
        wait_until(lambda: [i.stem for i in forked.spool.pending()] == [again.stem]
                   and not forked.spool.acknowledged(), 30, what="the next segment stored")
        wait_until(lambda: again.stem not in up.thread.status.active, 10, what="the conflicting segment parked")
        assert any(f"rejected {again.stem}: conflict" in f for f in up.thread.status.recent_faults)
        assert up.thread.status.offers_sent == 2  # one offer each: the parked one is not offered round and round
        assert office.store.read_receipt(device.site, device.device_id, after.stem) is not None
    finally:
        up.stop()
        forked.close()
