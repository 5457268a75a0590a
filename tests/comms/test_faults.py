"""The fault test: a bad network and a crashing broker between device and back office, while recording goes on.

A Python TCP proxy between the device and mosquitto cuts, resets and stalls the connection at random
moments; mosquitto is killed with SIGKILL and restarted twice; new segments keep arriving in the spool
throughout. Afterwards every segment must be in the store exactly once and verify, and the device must
have deleted each one only after a receipt for exactly that segment verified. The counts are printed
in the test summary (segments, faults injected, resends).
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from evidence import audit
from evidence.keys import load_device_public_keys
from evidence.verify import verify_paths
from evidence.receipts import verify_receipt
from comms_env import SUMMARY, test_uplink_settings, wait_until
from faultproxy import FaultProxy


pytestmark = pytest.mark.system  # 20 s of injected faults; the soak is also marked slow


def run_fault_scenario(world, broker, *, initial: int, size: int, fault_seconds: float, kills: int, seed: int,
                       rate: float, drain_timeout: float, catalog=None) -> dict:
    """``catalog``: an office (backoffice.catalog.office.Office); the receiver then catalogs each segment."""
    proxy = FaultProxy(broker.port, seed=seed, rate=rate)
    device = world.device()
    sealed = [s.stem for s in device.seal_random(initial, size=size)]
    office = world.backoffice([device])
    if catalog is not None:
        from backoffice.catalog.receiving import CatalogRecorder

        office.receiver.on_stored = CatalogRecorder(catalog, load_device_public_keys([device.device_pub]))
    violations: list[str] = []
    real_purge = device.spool.purge

    def purge_spy(stem: str) -> None:
        """Runs on the uplink thread: is there a verified receipt for exactly this segment, now?"""
        receipt = office.store.read_receipt(device.site, device.device_id, stem)
        info = device.spool.info(stem)
        if receipt is None or not info.acknowledged:
            violations.append(f"{stem}: purge before the back office stored its receipt")
        else:
            r = verify_receipt(receipt, office.receipt_pub)
            if r.ciphertext_sha256 != info.ciphertext_sha256:
                violations.append(f"{stem}: purged on a receipt for other bytes")
        real_purge(stem)

    device.spool.purge = purge_spy
    up = world.uplink(device, office.receipt_pub, port=proxy.port,
                      uplink=test_uplink_settings(chunk_kib=16, window=8, receipt_timeout_s=1.5,
                                                  offer_backoff_max_s=3.0),
                      mqtt_kw=dict(keepalive_s=2, reconnect_max_s=0.5))
    stop_writer = threading.Event()

    def writer():  # the recorder keeps sealing while the link suffers
        while not stop_writer.wait(0.7):
            sealed.extend(s.stem for s in device.seal_random(1, size=size))

    writer_thread = threading.Thread(target=writer, name="TestSegmentWriter", daemon=True)
    started = time.monotonic()
    try:
        writer_thread.start()
        proxy.run_faults(every=(0.3, 1.2), stall=(0.5, 4.0))
        kill_times = [fault_seconds * (k + 1) / (kills + 1) for k in range(kills)]
        for at in kill_times:
            time.sleep(max(0.0, started + at - time.monotonic()))
            broker.kill()
            time.sleep(0.5)
            broker.start()
        time.sleep(max(0.0, started + fault_seconds - time.monotonic()))
    finally:
        stop_writer.set()
        writer_thread.join(10)
        proxy.stop_faults()
    try:
        wait_until(lambda: not device.spool.pending() and not device.spool.acknowledged(), drain_timeout,
                   what="the backlog to drain after the faults stopped")
        wait_until(lambda: up.thread.status.segments_purged == len(sealed), 5, what="the uplink status")
    finally:
        elapsed = time.monotonic() - started
        proxy.close()

    # Exactly once in the store, and it verifies.
    ages = office.stored(".age")
    assert sorted(p.name for p in ages) == sorted(f"{s}.age" for s in sealed)
    assert not [p for p in office.store.root.rglob("*.tmp")] and not list(office.store.incoming.rglob("*.part"))
    report = verify_paths([office.store.root], load_device_public_keys([device.device_pub]))
    assert report.ok, report.lines()
    # Deleted only after its receipt, each exactly once, in the audit log in that order.
    assert violations == []
    events: dict[str, list[str]] = {}
    for e in device.audit_events():
        if e["event"] in (audit.SEGMENT_ACKNOWLEDGED, audit.SEGMENT_PURGED):
            events.setdefault(e["fields"]["stem"], []).append(e["event"])
    assert all(events.get(s) == [audit.SEGMENT_ACKNOWLEDGED, audit.SEGMENT_PURGED] for s in sealed), events
    if catalog is not None:  # every stored segment cataloged exactly once, before its receipt, and verified
        from backoffice.catalog.models import Segment

        rows = list(Segment.objects.values_list("stem", "verification"))
        assert sorted(stem for stem, _ in rows) == sorted(sealed) and {v for _, v in rows} == {"verified"}
        lines = [json.loads(x) for x in catalog.log.path.read_text().splitlines()]
        assert sorted(x["fields"]["stem"] for x in lines if x["event"] == "segment_cataloged") == sorted(sealed)
    status = up.thread.status
    counts = dict(
        segments=len(sealed), bytes=sum(p.stat().st_size for p in ages), seconds=round(elapsed, 1),
        cuts=proxy.faults["cut"], resets=proxy.faults["reset"], stalls=proxy.faults["stall"], broker_kills=kills,
        connects=status.connects, offers=status.offers_sent, chunks_sent=status.chunks_sent,
        chunks_resent=status.chunks_resent, bytes_resent=status.bytes_resent,
        receiver_duplicate_chunks=office.receiver.counts["duplicate_chunks"],
        receiver_duplicate_bytes=office.receiver.counts["duplicate_bytes"],
        receipts_resent=office.receiver.counts["receipts_resent"], puback_errors=status.puback_errors)
    return counts


def _summarise(name: str, counts: dict) -> None:
    SUMMARY.append(f"{name}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))


def test_every_segment_arrives_once_through_a_faulty_network_and_a_crashing_broker(world, broker):
    counts = run_fault_scenario(world, broker, initial=12, size=150_000, fault_seconds=14.0, kills=2, seed=7,
                                rate=400_000, drain_timeout=60)
    _summarise("fault test", counts)
    assert counts["cuts"] + counts["resets"] + counts["stalls"] >= 10
    assert counts["connects"] >= 5


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_soak_through_a_faulty_network_and_a_crashing_broker(world, broker):
    counts = run_fault_scenario(world, broker, initial=40, size=400_000, fault_seconds=120.0, kills=8, seed=11,
                                rate=500_000, drain_timeout=240)
    _summarise("fault soak", counts)


def test_with_the_catalog_on_every_segment_is_cataloged_once_through_the_same_faults(world, broker, db, tmp_path):
    from backoffice.catalog.office import open_office
    from evidence.keys import generate_office_key

    (tmp_path / "office-keys").mkdir()
    generate_office_key(tmp_path / "office-keys")
    catalog = open_office(tmp_path / "unused", tmp_path / "office-keys" / "office.key",
                          tmp_path / "office-audit.jsonl")
    try:
        counts = run_fault_scenario(world, broker, initial=8, size=150_000, fault_seconds=10.0, kills=1, seed=11,
                                    rate=400_000, drain_timeout=60, catalog=catalog)
    finally:
        catalog.close()
    _summarise("fault test with the catalog", counts)
    assert counts["cuts"] + counts["resets"] + counts["stalls"] >= 5
