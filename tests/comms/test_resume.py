"""Resuming: after a disconnect, an agent restart, a receiver restart or a broker restart mid-segment, the
transfer continues from what the receiver holds instead of starting the segment over."""

from __future__ import annotations

import pytest

from evidence.keys import load_device_public_keys
from evidence.verify import verify_paths
from comms_env import test_uplink_settings, wait_until
from faultproxy import FaultProxy

CHUNK_KIB = 8
WINDOW = 8
SEGMENT = 1_200_000  # about 147 chunks of 8 KiB
#: What may travel twice after one interruption: the window in flight, twice (paho's DUP resend of the
#: window and our own resend of chunks whose PUBACK was lost), plus a chunk of slack.
RESEND_BOUND = (2 * WINDOW + 1) * CHUNK_KIB * 1024


@pytest.fixture
def proxy(broker):
    p = FaultProxy(broker.port, rate=1_000_000)  # ~1 s per segment: time to interrupt it mid-way
    yield p
    p.close()


def received(office) -> int:
    return office.receiver.counts["chunk_bytes"]


def drained(device) -> bool:
    return not device.spool.pending() and not device.spool.acknowledged()


def settled(up, purged: int) -> None:
    """Wait for the status snapshot to show the purges (it trails the spool by one loop turn)."""
    wait_until(lambda: up.thread.status.segments_purged == purged, 5, what="the uplink status")


def check_store(office, device, count: int) -> None:
    assert len(office.stored(".age")) == count
    assert verify_paths([office.store.root], load_device_public_keys([device.device_pub])).ok


def test_a_mid_segment_disconnect_resends_only_what_was_in_flight(world, proxy):
    device = world.device()
    device.seal_random(1, size=SEGMENT)
    office = world.backoffice([device])
    up = world.uplink(device, office.receipt_pub, port=proxy.port,
                      uplink=test_uplink_settings(chunk_kib=CHUNK_KIB, window=WINDOW))
    wait_until(lambda: received(office) > SEGMENT // 2, 20, interval=0.005, what="half the segment")
    assert proxy.inject("reset")
    wait_until(lambda: drained(device), 30, what="the rest of the segment")
    settled(up, 1)
    check_store(office, device, 1)
    status = up.thread.status
    resent = status.bytes_resent + office.receiver.counts["duplicate_bytes"]
    assert status.disconnects >= 1 and status.connects >= 2
    assert resent <= RESEND_BOUND, (status.bytes_resent, office.receiver.counts["duplicate_bytes"])


def test_an_agent_restart_mid_segment_continues_where_the_receiver_is(world, proxy):
    device = world.device()
    device.seal_random(1, size=SEGMENT)
    office = world.backoffice([device])
    settings = test_uplink_settings(chunk_kib=CHUNK_KIB, window=WINDOW)
    first = world.uplink(device, office.receipt_pub, port=proxy.port, uplink=settings)
    wait_until(lambda: received(office) > SEGMENT // 2, 20, interval=0.005, what="half the segment")
    first.stop()                                  # the agent stops (paho's in-flight chunks are gone with it)
    sent_before = first.thread.status.bytes_sent
    second = world.uplink(device, office.receipt_pub, port=proxy.port, uplink=settings)
    wait_until(lambda: drained(device), 30, what="the rest of the segment")
    settled(second, 1)
    check_store(office, device, 1)
    total = sent_before + second.thread.status.bytes_sent
    assert SEGMENT <= total <= SEGMENT + RESEND_BOUND, (sent_before, second.thread.status.bytes_sent)


@pytest.mark.system  # a fault scenario: the receiver restarted mid-segment (~3 s)
def test_a_receiver_restart_mid_segment_keeps_the_chunks_it_had(world, proxy):
    device = world.device()
    device.seal_random(2, size=SEGMENT)
    office = world.backoffice([device])
    up = world.uplink(device, office.receipt_pub, port=proxy.port,
                      uplink=test_uplink_settings(chunk_kib=CHUNK_KIB, window=WINDOW, receipt_timeout_s=1.0))
    wait_until(lambda: received(office) > SEGMENT // 2, 20, interval=0.005, what="half the first segment")
    office.stop()
    got = received(office)
    again = world.backoffice([device], root_name="backoffice-restarted")
    wait_until(lambda: drained(device), 40, what="both segments")
    settled(up, 2)
    check_store(again, device, 2)
    # Everything the first receiver wrote was used: the two receivers together saw about two segments.
    total = got + received(again) + again.receiver.counts["duplicate_bytes"]
    assert total <= 2 * SEGMENT + RESEND_BOUND, (got, received(again))
    assert up.thread.status.fault is None


@pytest.mark.system  # a fault scenario: the broker restarted mid-segment (~3 s each)
@pytest.mark.parametrize("how", ["kill -9", "graceful"])
def test_a_broker_restart_mid_segment(world, broker, proxy, how):
    device = world.device()
    device.seal_random(2, size=SEGMENT)
    office = world.backoffice([device])
    up = world.uplink(device, office.receipt_pub, port=proxy.port,
                      uplink=test_uplink_settings(chunk_kib=CHUNK_KIB, window=WINDOW, receipt_timeout_s=1.0))
    wait_until(lambda: received(office) > SEGMENT // 2, 20, interval=0.005, what="half the first segment")
    broker.kill() if how == "kill -9" else broker.stop()
    broker.start()
    wait_until(lambda: drained(device), 40, what="both segments after the broker restart")
    settled(up, 2)
    check_store(office, device, 2)
    assert up.thread.status.connects >= 2
    assert up.thread.status.bytes_resent <= SEGMENT // 2


def test_a_replacement_uplink_joins_the_running_link(world):
    """The runtime restarts a crashed worker: the new UplinkThread attaches to the link that kept running."""
    from comms.uplink import UplinkThread
    device = world.device()
    device.seal_random(2, size=40_000)
    office = world.backoffice([device])
    first = world.uplink(device, office.receipt_pub)
    wait_until(lambda: first.thread.status.link_up, 10, what="the first uplink to connect")
    first.thread.stop()                                   # the worker ends; the link stays up
    device.seal_random(2, size=40_000)
    second = UplinkThread(first.link, device.spool, site=device.site, device_id=device.device_id,
                          settings=test_uplink_settings(), receipt_key=office.receipt_pub, audit_log=device.audit)
    second.start()
    try:
        wait_until(lambda: not device.spool.pending() and not device.spool.acknowledged(), 20, what="the upload")
        assert second.status.link_up or second.is_alive()
    finally:
        second.stop()
    assert len(office.stored(".age")) == 4
