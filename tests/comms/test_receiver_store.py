"""The receiver and its store without a broker: chain positions, duplicates, conflicts, crashes, damage."""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time

import pytest

from evidence.keys import generate_receipt_key, load_device_public_keys, load_receipt_public_key, load_receipt_signing_key
from evidence.seal import Manifest
from evidence.verify import verify_paths
from comms import protocol
from backoffice import store as store_module
from evidence.receipts import verify_receipt
from backoffice.receiver import Receiver
from backoffice.store import STALE_LOCK_S, EvidenceStore, Partial, incident_dir_name
from comms.transfer import BytesSource, SegmentTransfer
from comms_env import DeviceEnv

CHUNK = 8192


@pytest.fixture
def env(tmp_path):
    device = DeviceEnv(tmp_path / "dev")
    keys = tmp_path / "keys"
    keys.mkdir()
    generate_receipt_key(keys)
    store = EvidenceStore(tmp_path / "store", tmp_path / "incoming")
    rx = Receiver(store, load_device_public_keys([device.device_pub]), load_receipt_signing_key(keys / "receipt.key"),
                  "bo-recv-1", max_segment_bytes=1 << 24, max_chunk_bytes=1 << 20)
    yield device, rx, load_receipt_public_key(keys / "receipt.pub")
    device.close()


def messages(device: DeviceEnv, stem: str, skip: set[int] = frozenset()) -> tuple[bytes, list[tuple[int, bytes]]]:
    info = device.spool.info(stem)
    stored = device.spool.read(stem)
    t = SegmentTransfer(stem, info.seq, info.ciphertext_sha256, info.ciphertext_bytes, CHUNK)
    t.loaded(BytesSource(stored.ciphertext), stored.manifest)
    offer = t.offer().encode()
    t.receiver_has(set(skip))
    chunks = []
    while (nxt := t.next_chunk()) is not None:
        chunks.append(nxt)
    return offer, chunks


OFFER = protocol.up_topic("duisburg", "kod-07", "offer")
CHUNKT = protocol.up_topic("duisburg", "kod-07", "chunk")


def deliver(rx: Receiver, device: DeviceEnv, stem: str) -> list:
    offer, chunks = messages(device, stem)
    replies = rx.handle(OFFER, offer)
    for _, payload in chunks:
        replies += rx.handle(CHUNKT, payload)
    return replies


def receipt_of(replies) -> dict:
    found = [r for r in replies if r.topic.endswith("/receipt")]
    assert len(found) == 1, replies
    return json.loads(found[0].payload)


def test_out_of_order_arrival_is_stored_and_the_chain_is_judged_as_it_fills(env, caplog):
    device, rx, _ = env
    stems = [s.stem for s in device.seal_random(4, size=20_000)]
    assert receipt_of(deliver(rx, device, stems[2]))["chain"] == "pending"    # seq 3 before its predecessor
    assert receipt_of(deliver(rx, device, stems[0]))["chain"] == "first"
    assert rx.store.gaps("duisburg", "kod-07") == [(2, 2)]
    assert receipt_of(deliver(rx, device, stems[1]))["chain"] == "linked"     # and seq 3 is now linked forward
    assert receipt_of(deliver(rx, device, stems[3]))["chain"] == "linked"
    assert rx.store.gaps("duisburg", "kod-07") == []
    assert "chain broken" not in caplog.text
    assert verify_paths([rx.store.root], load_device_public_keys([device.device_pub])).ok


def test_duplicates_get_the_same_receipt_byte_for_byte(env):
    device, rx, public = env
    stem = device.seal_random(1, size=30_000)[0].stem
    first = [r for r in deliver(rx, device, stem) if r.topic.endswith("/receipt")][0].payload
    offer, chunks = messages(device, stem)
    again = rx.handle(OFFER, offer)
    assert [r.payload for r in again] == [first]
    assert all(rx.handle(CHUNKT, p) == [] for _, p in chunks)  # late duplicate chunks: silently dropped
    assert rx.counts["duplicate_chunks"] == len(chunks) and rx.counts["stored"] == 1
    assert verify_receipt(first, public).stem == stem


def test_the_status_names_what_the_receiver_holds_so_only_the_rest_is_sent(env):
    device, rx, _ = env
    stem = device.seal_random(1, size=60_000)[0].stem
    offer, chunks = messages(device, stem)
    status = protocol.Status.decode(rx.handle(OFFER, offer)[0].payload)
    assert status.state == "receiving" and status.have == ()
    for index, payload in chunks[:3]:
        rx.handle(CHUNKT, payload)
    status = protocol.Status.decode(rx.handle(OFFER, offer)[0].payload)  # the device comes back after a break
    assert status.indices() == {0, 1, 2}


def test_a_chunk_damaged_on_the_way_is_asked_for_again(env):
    device, rx, _ = env
    stem = device.seal_random(1, size=40_000)[0].stem
    offer, chunks = messages(device, stem)
    rx.handle(OFFER, offer)
    index, payload = chunks[1]
    damaged = bytearray(payload)
    damaged[-10] ^= 0xFF  # the header's hash no longer matches the data
    replies = []
    for i, p in chunks:
        replies += rx.handle(CHUNKT, bytes(damaged) if i == index else p)
    status = protocol.Status.decode(replies[-1].payload)
    assert status.state == "receiving" and index not in status.indices()
    assert rx.handle(CHUNKT, payload)[0].topic.endswith("/receipt")


def test_a_different_manifest_for_a_stored_stem_is_a_conflict_and_nothing_is_overwritten(env, tmp_path):
    device, rx, _ = env
    stem = device.seal_random(1, size=20_000)[0].stem
    receipt_of(deliver(rx, device, stem))
    age = next(rx.store.root.rglob("*.age"))
    before = age.read_bytes()
    # The same device restarts its chain (state lost) and seals another seq 1: a fork.
    keys = tmp_path / "fork" / "device" / "keys"
    keys.mkdir(parents=True)
    for name in ("device.key", "device.pub"):
        (keys / name).write_bytes((tmp_path / "dev" / "device" / "keys" / name).read_bytes())
    os.chmod(keys / "device.key", 0o600)
    forked = DeviceEnv(tmp_path / "fork")
    forked.seal_random(1, size=20_000)
    offer, _ = messages(forked, stem)
    reply = protocol.Status.decode(rx.handle(OFFER, offer)[0].payload)
    assert (reply.state, reply.code, reply.stem) == ("rejected", "conflict", stem)  # the device parks that one
    assert age.read_bytes() == before
    forked.close()


def test_after_a_crash_between_manifest_and_receipt_the_receipt_is_made_on_the_next_offer(env):
    device, rx, public = env
    stem = device.seal_random(1, size=20_000)[0].stem
    receipt_of(deliver(rx, device, stem))
    rx.store.receipt_path("duisburg", "kod-07", stem).unlink()  # the receiver died before writing it
    offer, _ = messages(device, stem)
    receipt = rx.handle(OFFER, offer)[0]
    assert verify_receipt(receipt.payload, public).stem == stem


def test_a_stale_assembly_lock_of_a_dead_receiver_is_broken(env):
    device, rx, _ = env
    stem = device.seal_random(1, size=20_000)[0].stem
    offer, chunks = messages(device, stem)
    rx.handle(OFFER, offer)
    for _, p in chunks[:-1]:
        rx.handle(CHUNKT, p)
    partial = rx.store.partial("duisburg", "kod-07", stem, CHUNK)
    lock = partial.directory / "assembling.lock"
    lock.touch()
    assert rx.handle(CHUNKT, chunks[-1][1]) == []     # another receiver seems to be at it
    old = time.time() - STALE_LOCK_S - 1
    os.utime(lock, (old, old))
    assert rx.handle(OFFER, offer)[0].topic.endswith("/receipt")  # the re-offer finds it dead and finishes


def test_unsafe_incident_ids_become_hashed_directory_names():
    assert incident_dir_name("20260101T000000Z-abcdef") == "20260101T000000Z-abcdef"
    for bad in ("../../etc", "a/b", ".hidden", "x" * 200, "with space"):
        name = incident_dir_name(bad)
        assert name.startswith("incident-") and "/" not in name and len(name) == 25


def test_a_manifest_checked_against_the_topic(env):
    device, rx, _ = env
    stem = device.seal_random(1, size=20_000)[0].stem
    offer, _ = messages(device, stem)
    reply = protocol.Status.decode(rx.handle(protocol.up_topic("essen", "kod-07", "offer"), offer)[0].payload)
    assert (reply.code, reply.stem) == ("mismatch", stem) and "site" in reply.reason
    m = Manifest.parse(device.spool.read(stem).manifest)
    assert m.site == "duisburg"


@pytest.fixture
def second_receiver(env, tmp_path):
    """Another receiver of the same share group: its own process state, the same store and incoming area."""
    device, _, _ = env
    store = EvidenceStore(tmp_path / "store", tmp_path / "incoming")
    return Receiver(store, load_device_public_keys([device.device_pub]),
                    load_receipt_signing_key(tmp_path / "keys" / "receipt.key"), "bo-recv-2",
                    max_segment_bytes=1 << 24, max_chunk_bytes=1 << 20)


def test_two_receivers_writing_the_last_two_chunks_at_once_store_the_segment(env, second_receiver, monkeypatch):
    device, rx, public = env
    stem = device.seal_random(1, size=40_000)[0].stem
    offer, chunks = messages(device, stem)
    rx.handle(OFFER, offer)
    for _, payload in chunks[:-2]:
        rx.handle(CHUNKT, payload)
    (mine, my_payload), (_, other_payload) = chunks[-2:]
    other_replies: list = []
    write = Partial.put

    def put_while_the_other_receiver_writes(self, index, *args):
        # This receiver has listed the markers (the last two missing); the other one takes its chunk now.
        if index == mine and not other_replies:
            other_replies.append(second_receiver.handle(CHUNKT, other_payload))
        return write(self, index, *args)

    monkeypatch.setattr(Partial, "put", put_while_the_other_receiver_writes)
    replies = rx.handle(CHUNKT, my_payload) + other_replies[0]
    receipts = [r for r in replies if r.topic.endswith("/receipt")]
    assert len(receipts) == 1, "a complete segment waits for the device's re-offer"
    assert verify_receipt(receipts[0].payload, public).stem == stem
    assert not rx.store.partial("duisburg", "kod-07", stem, CHUNK).directory.exists()


def test_a_re_offer_racing_with_storage_leaves_nothing_in_the_incoming_area(env, second_receiver, monkeypatch):
    device, rx, public = env
    stem = device.seal_random(1, size=40_000)[0].stem
    offer, chunks = messages(device, stem)
    rx.handle(OFFER, offer)
    for _, payload in chunks[:-1]:
        rx.handle(CHUNKT, payload)
    stored_meanwhile: list = []
    lookup = second_receiver.store.lookup

    def lookup_while_the_first_receiver_stores(manifest):
        found = lookup(manifest)
        if not stored_meanwhile:  # not stored yet when looked up; then the last chunk lands at the first receiver
            stored_meanwhile.append(rx.handle(CHUNKT, chunks[-1][1]))
        return found

    monkeypatch.setattr(second_receiver.store, "lookup", lookup_while_the_first_receiver_stores)
    replies = second_receiver.handle(OFFER, offer)  # the device's re-offer, at the second receiver
    for _, payload in chunks:  # whatever the device sends on that answer
        replies += second_receiver.handle(CHUNKT, payload)
    assert receipt_of(stored_meanwhile[0])["stem"] == stem
    assert all(verify_receipt(r.payload, public).stem == stem for r in replies if r.topic.endswith("/receipt"))
    partial = rx.store.partial("duisburg", "kod-07", stem, CHUNK)
    assert not partial.directory.exists(), sorted(p.name for p in partial.directory.iterdir())
    assert len(list(rx.store.root.rglob("*.age"))) == 1


def test_chunks_left_over_for_a_stored_segment_are_removed_when_it_is_offered_again(env):
    device, rx, _ = env
    stem = device.seal_random(1, size=40_000)[0].stem
    receipt_of(deliver(rx, device, stem))
    offer, chunks = messages(device, stem)
    partial = rx.store.partial("duisburg", "kod-07", stem, CHUNK)
    partial.write_offer(protocol.Offer.decode(offer))  # a receiver died between storing and cleaning up
    for _, payload in chunks[:2]:
        header, data = protocol.decode_chunk(payload, 1 << 20)
        partial.put(header.index, header.offset, header.sha256, data)
    assert receipt_of(rx.handle(OFFER, offer))["stem"] == stem
    assert not partial.directory.exists()


def test_rejections_are_logged_once_per_reason_not_once_per_device(env, caplog):
    _, rx, _ = env
    too_big = b"x" * (protocol.MAX_OFFER_BYTES + 1)
    for n in range(20):
        rx.handle(protocol.up_topic("duisburg", f"kod-{n:02d}", "offer"), b"not json")
        rx.handle(protocol.up_topic("duisburg", f"kod-{n:02d}", "offer"), too_big)
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 2, lines  # one per reason; the periodic summary counts the rest
    assert any(": malformed: " in line for line in lines) and any(": oversize: " in line for line in lines)
    assert rx.counts["rejected_malformed"] == rx.counts["rejected_oversize"] == 20


def test_a_lock_released_meanwhile_or_a_folder_already_stored_is_not_reported_as_a_stale_lock(env, monkeypatch,
                                                                                          caplog):
    device, rx, _ = env
    stem = device.seal_random(1, size=20_000)[0].stem
    offer, _ = messages(device, stem)
    rx.handle(OFFER, offer)
    partial = rx.store.partial("duisburg", "kod-07", stem, CHUNK)
    lock = partial.directory / "assembling.lock"
    lock.touch()
    try_lock = store_module._try_lock

    def released_by_its_holder_now(path):  # the other receiver finishes between our attempt and our look
        fd = try_lock(path)
        if fd is None and lock.exists():
            lock.unlink()
        return fd

    monkeypatch.setattr(store_module, "_try_lock", released_by_its_holder_now)
    with partial.assembly_lock() as mine:
        assert mine
    partial.remove()  # stored and cleaned up by another receiver
    with partial.assembly_lock() as mine:
        assert not mine
    assert "stale" not in caplog.text


def test_a_stored_segment_is_handed_to_the_catalog_before_its_receipt_goes_out(env):
    device, rx, public = env
    seen = []

    def catalog(manifests):
        for manifest in manifests:  # durably stored (manifest in place), and no receipt exists yet
            assert rx.store.lookup(manifest) is not None
            assert rx.store.read_receipt(manifest.site, manifest.device_id, manifest.stem) is None
        seen.append([m.stem for m in manifests])

    rx.on_stored = catalog
    stem = device.seal_random(1, size=20_000)[0].stem
    receipt = [r for r in deliver(rx, device, stem) if r.topic.endswith("/receipt")]
    assert verify_receipt(receipt[0].payload, public).stem == stem
    assert seen == [[stem]]


def test_when_the_catalog_fails_no_receipt_goes_out_and_the_next_offer_catalogs_it(env):
    from backoffice.store import StoreError

    device, rx, public = env
    stem = device.seal_random(1, size=20_000)[0].stem

    def broken(manifests):
        raise StoreError("catalog: database is locked")

    rx.on_stored = broken
    replies = deliver(rx, device, stem)
    assert not [r for r in replies if r.topic.endswith("/receipt")]
    refusal = protocol.Status.decode([r.payload for r in replies if r.topic.endswith("/status")][-1])
    assert (refusal.state, refusal.code, refusal.stem) == ("rejected", "storage_error", stem)  # the device retries it
    assert rx.store.read_receipt("duisburg", "kod-07", stem) is None  # stored, but not acknowledged
    seen = []
    rx.on_stored = lambda manifests: seen.extend(m.stem for m in manifests)
    offer, _ = messages(device, stem)
    assert verify_receipt(rx.handle(OFFER, offer)[0].payload, public).stem == stem
    assert seen == [stem]


def test_a_batch_the_catalog_refuses_is_retried_one_by_one_so_one_bad_segment_holds_back_only_itself(env):
    """The acknowledger records a few segments per transaction; one that the catalog cannot take (a
    database constraint, a bad field) must not withhold the others' receipts."""
    from backoffice.store import StoreError

    device, rx, public = env
    sealed = device.seal_random(3, size=5_000)
    batch = []
    rx.defer_acknowledgement(lambda route, manifest: batch.append((route, manifest)))
    for s in sealed:
        assert not [r for r in deliver(rx, device, s.stem) if r.topic.endswith("/receipt")]
    assert [m.stem for _, m in batch] == [s.stem for s in sealed]  # stored, waiting for acknowledgement
    calls = []

    def catalog(manifests):
        calls.append([m.stem for m in manifests])
        if sealed[1].stem in calls[-1]:
            raise StoreError("catalog: value too long for type character varying(96)")

    rx.on_stored = catalog
    replies = rx.acknowledge(batch)
    receipts = [verify_receipt(r.payload, public).stem for r in replies if r.topic.endswith("/receipt")]
    assert receipts == [sealed[0].stem, sealed[2].stem]
    refusals = [protocol.Status.decode(r.payload) for r in replies if r.topic.endswith("/status")]
    assert [(x.code, x.stem) for x in refusals] == [("storage_error", sealed[1].stem)]
    assert calls == [[s.stem for s in sealed], [sealed[0].stem], [sealed[1].stem], [sealed[2].stem]]
    assert rx.store.read_receipt("duisburg", "kod-07", sealed[1].stem) is None


def test_the_first_receipt_stored_for_a_segment_is_the_one_every_offer_gets(env):
    """Two receivers of a group (or a re-offer racing the acknowledger) may both sign a stored segment's
    receipt; the one stored first stands, so the device and the store never hold different receipts."""
    device, rx, public = env
    sealed = device.seal_random(1, size=5_000)[0]
    pending = []
    rx.defer_acknowledgement(lambda route, manifest: pending.append((route, manifest)))
    deliver(rx, device, sealed.stem)
    (route, manifest), = pending
    first = receipt_of(rx.acknowledge([(route, manifest)]))
    stored = rx.store.read_receipt("duisburg", "kod-07", sealed.stem)
    other = rx.store.write_receipt(manifest, stored.replace(b'"bo-recv-1"', b'"bo-recv-2"'))
    assert other == stored  # refused: the first one stands
    rx.defer_acknowledgement(None)
    again = receipt_of(rx.handle(OFFER, messages(device, sealed.stem)[0]))
    assert again == first and rx.store.read_receipt("duisburg", "kod-07", sealed.stem) == stored


def test_the_receiver_stores_manifests_with_and_without_an_officer(env):
    device, rx, receipt_key = env
    plain = device.seal_random(1, size=5_000, incident="20260101T000000Z-aaaaaa")[0]
    assigned = device.seal_random(1, size=5_000, incident="20260101T000100Z-bbbbbb", officer="ko-17")[0]
    for sealed in (plain, assigned):
        receipt = receipt_of(deliver(rx, device, sealed.stem))
        assert receipt["stem"] == sealed.stem and receipt["manifest_sha256"] == sealed.manifest_sha256
    stored = {m.name: Manifest.parse(m.read_bytes()) for m in rx.store.root.rglob("*.manifest.json")}
    assert {m.stem: m.officer for m in stored.values()} == {plain.stem: None, assigned.stem: "ko-17"}


def _stored_unacknowledged(device, rx, count: int) -> list:
    """``count`` segments stored by ``rx`` and waiting for their acknowledgement: (route, manifest) each."""
    pending = []
    rx.defer_acknowledgement(lambda route, manifest: pending.append((route, manifest)))
    for s in device.seal_random(count, size=5_000):
        deliver(rx, device, s.stem)
    rx.defer_acknowledgement(None)
    assert len(pending) == count
    return pending


def test_the_acknowledger_records_what_gathered_in_one_catalog_call_and_delivers_every_receipt(env):
    from backoffice.receiver import AcknowledgerThread

    device, rx, public = env
    pending = _stored_unacknowledged(device, rx, 3)
    calls, delivered = [], []
    rx.on_stored = lambda manifests: calls.append([m.stem for m in manifests])
    stage = AcknowledgerThread(rx, delivered.append, lambda: True, gather_s=60.0, batch=3)  # fills before 60 s
    for route, manifest in pending:
        stage.submit_segment(route, manifest)
    stage.submit_segment(*pending[0])  # a re-offer while it waits: already covered
    stage.start()
    stage.stop(timeout=30)
    assert not stage.is_alive() and stage.fault is None
    assert calls == [[m.stem for _, m in pending]]
    receipts = [verify_receipt(r.payload, public).stem for d in delivered for r in d.replies]
    assert receipts == [m.stem for _, m in pending]


def test_the_acknowledger_stops_without_waiting_out_its_gathering_and_acknowledges_what_it_holds(env):
    from backoffice.receiver import AcknowledgerThread

    device, rx, public = env
    (route, manifest), = _stored_unacknowledged(device, rx, 1)
    calls, delivered = [], []
    rx.on_stored = lambda manifests: calls.append([m.stem for m in manifests])
    stage = AcknowledgerThread(rx, delivered.append, lambda: True, gather_s=3600.0, batch=8)
    stage.start()
    stage.submit_segment(route, manifest)
    stage.stop(timeout=30)  # a stop during the gathering: what it holds is done now, not in an hour
    assert not stage.is_alive()
    assert calls == [[manifest.stem]]
    assert [verify_receipt(r.payload, public).stem for d in delivered for r in d.replies] == [manifest.stem]


def test_without_a_catalog_the_acknowledger_signs_each_receipt_at_once(env):
    from backoffice.receiver import AcknowledgerThread

    device, rx, public = env
    (route, manifest), = _stored_unacknowledged(device, rx, 1)
    delivered = queue.Queue()
    stage = AcknowledgerThread(rx, delivered.put, lambda: True, gather_s=3600.0, batch=8)
    stage.start()
    try:
        stage.submit_segment(route, manifest)
        receipt = delivered.get(timeout=30).replies[0]  # long before the hour a catalog would gather for
        assert verify_receipt(receipt.payload, public).stem == manifest.stem
    finally:
        stage.stop(timeout=30)


def test_the_acknowledger_waits_for_a_segment_being_stored_and_not_when_none_is(env):
    """Gathering pays only while another segment is about to be stored: otherwise (the end of a burst, or a
    device that waits for these receipts before it sends more) the receipts go out at once."""
    from backoffice.receiver import AcknowledgerThread

    device, rx, public = env
    (first, second) = _stored_unacknowledged(device, rx, 2)
    calls, delivered = [], queue.Queue()
    rx.on_stored = lambda manifests: calls.append([m.stem for m in manifests])
    storing = threading.Event()
    storing.set()
    stage = AcknowledgerThread(rx, delivered.put, storing.is_set, gather_s=3600.0, batch=8)
    stage.start()
    try:
        stage.submit_segment(*first)
        time.sleep(0.2)  # it waits: the assembler is at work on the next one
        assert delivered.empty() and calls == []
        stage.submit_segment(*second)
        storing.clear()  # the assembler is idle now: nothing more is about to come
        assert [verify_receipt(r.payload, public).stem for r in delivered.get(timeout=30).replies] == \
            [m.stem for _, m in (first, second)]
        assert calls == [[m.stem for _, m in (first, second)]]
        (third,) = _stored_unacknowledged(device, rx, 1)
        stage.submit_segment(*third)  # with the assembler idle: at once, not in an hour
        assert verify_receipt(delivered.get(timeout=30).replies[0].payload, public).stem == third[1].stem
    finally:
        stage.stop(timeout=30)


def test_a_segment_in_hand_alone_waits_for_one_that_is_arriving_and_no_more(env):
    """While another segment's chunks come in, the acknowledger holds a lone stored segment until that one is
    stored, so the two share a transaction; with two in hand it does not wait for the next arrival."""
    from backoffice.receiver import AcknowledgerThread

    device, rx, public = env
    first, second, third = _stored_unacknowledged(device, rx, 3)
    calls, delivered = [], queue.Queue()
    rx.on_stored = lambda manifests: calls.append([m.stem for m in manifests])
    arriving = threading.Event()
    arriving.set()
    stage = AcknowledgerThread(rx, delivered.put, lambda: False, arriving=arriving.is_set, gather_s=3600.0,
                               batch=8)
    stage.start()
    try:
        stage.submit_segment(*first)
        time.sleep(0.2)  # it waits: the next segment is on its way
        assert delivered.empty() and calls == []
        stage.submit_segment(*second)
        receipts = [verify_receipt(r.payload, public).stem for r in delivered.get(timeout=30).replies]
        assert receipts == [m.stem for _, m in (first, second)] and calls == [receipts]  # not waiting for a third
        arriving.clear()  # nothing arriving: a lone segment goes at once
        stage.submit_segment(*third)
        assert verify_receipt(delivered.get(timeout=30).replies[0].payload, public).stem == third[1].stem
    finally:
        stage.stop(timeout=30)


def test_a_segment_counts_as_arriving_while_its_chunks_come_in(env, monkeypatch):
    from backoffice import receiver as receiver_module

    device, rx, _ = env
    sealed = device.seal_random(1, size=5 * CHUNK)[0]
    offer, chunks = messages(device, sealed.stem)
    assert not rx.segment_arriving()
    rx.handle(OFFER, offer)
    assert not rx.segment_arriving()  # an offer alone brings no bytes yet
    assert rx.handle(CHUNKT, chunks[0][1]) == []  # stored as a part, not yet complete
    assert rx.segment_arriving()
    monkeypatch.setattr(receiver_module, "ARRIVING_S", 0.0)  # as if the next chunk were late
    assert not rx.segment_arriving()


class _QuietLink:
    """An MQTT link that never delivers anything: the ReceiverThread's loop turns on its own queue."""

    def add_listener(self, *args, **kwargs):
        pass

    def remove_listener(self, *args):
        pass


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the receiver ends, as meant
def test_the_watchdog_hears_of_an_acknowledger_that_is_stuck_or_dead(env):
    """Stuck: the watchdog is no longer fed. Dead: the receiver thread ends too, naming it, and systemd restarts
    the service (a receiver that stores but never acknowledges would fill the devices' spools unseen)."""
    from backoffice.receiver import ReceiverThread

    _, rx, _ = env
    thread = ReceiverThread(_QuietLink(), rx, stall_s=1.0)
    thread.start()
    try:
        assert thread.health()[0]
        thread.acknowledger.busy_since = time.monotonic() - 5  # one catalog transaction for five seconds
        ok, why = thread.health()
        assert not ok and "acknowledging segments has been stuck" in why
        thread.acknowledger.busy_since = None
        thread.acknowledger.stop(timeout=10)
        thread.join(10)
        assert not thread.is_alive()
        ok, why = thread.health()
        assert not ok and "ReceiverAcknowledger thread ended" in why
    finally:
        thread.stop(timeout=10)


def test_the_acknowledger_opens_the_catalog_in_its_own_thread_before_it_is_ready(env, caplog):
    """A database connection is per thread: the acknowledger opens its own at start, so the first segment
    does not wait for it; a database that cannot be reached is logged then, and the receiver goes on."""
    from backoffice.receiver import AcknowledgerThread
    from backoffice.store import StoreError

    _, rx, _ = env
    opened = []

    class Catalog:
        def open(self):
            opened.append(threading.current_thread().name)
            raise StoreError("catalog: the database cannot be reached (connection refused)")

        def __call__(self, manifests):
            pass

    rx.on_stored = Catalog()
    stage = AcknowledgerThread(rx, lambda stored: None, lambda: False)
    stage.start()
    try:
        assert stage.ready.wait(30)
        assert opened == ["ReceiverAcknowledger"] and stage.is_alive()
        assert "the database cannot be reached" in caplog.text
    finally:
        stage.stop(timeout=30)
