"""Officer check-out's NFC side: the PN532 adapter against a fake chip on the I2C bus, and the badge reader
thread against a fake reader with the documented interface."""

from __future__ import annotations

import queue

import pytest

from tests.support import wait_for
from ui.badges import BadgeReaderThread, BadgeSeen
from ui.nfc import PASSIVE_RETRIES, NfcError, Pn532I2C, open_pn532

from fake_pn532 import FakePn532Bus, FakeReader

UID = bytes.fromhex("04a1b2c3d4e5f6")


def test_the_adapter_configures_the_chip_and_reads_a_badge(monkeypatch):
    bus = FakePn532Bus(UID, busy_polls=3)
    reader = open_pn532(1, bus=bus)
    assert [c for c, _ in bus.commands] == [0x02, 0x14, 0x32]  # firmware, SAM configuration, RF configuration
    assert bus.commands[2][1] == bytes((0x05, 0xFF, 0x01, PASSIVE_RETRIES))  # the chip never waits for a card
    assert reader.read_passive_target(timeout=0.5) == UID
    assert bus.commands[-1] == (0x4A, b"\x01\x00")  # one ISO 14443A target at 106 kbit/s
    bus.uid = None
    assert reader.read_passive_target(timeout=0.5) is None
    reader.close()
    assert bus.closed


def test_no_chip_on_the_bus_is_a_sentence_not_a_traceback():
    bus = FakePn532Bus(UID, present=False)
    with pytest.raises(NfcError, match="cannot write to the PN532 at 0x24 on I2C bus 1"):
        open_pn532(1, bus=bus)
    assert bus.closed


def test_a_chip_that_never_gets_ready_or_answers_garbage_is_an_error():
    clock = [0.0]
    silent = FakePn532Bus(UID, busy_polls=10**9)
    reader = Pn532I2C(1, bus=silent, sleep=lambda s: clock.__setitem__(0, clock[0] + s), clock=lambda: clock[0])
    with pytest.raises(NfcError, match="no PN532 answers at I2C address 0x24 on bus 1"):
        reader.begin()
    bus = FakePn532Bus(UID)
    reader = open_pn532(1, bus=bus)
    bus.corrupt_next = True
    with pytest.raises(NfcError, match="bad data checksum"):
        reader.read_passive_target(timeout=0.5)


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def stepped(reader, clock, gone_s=2.0):
    """The thread's loop body, run by the test one poll at a time."""
    thread = BadgeReaderThread(lambda: reader, poll_s=0.0, gone_s=gone_s, clock=clock)
    assert thread._open_reader()
    return thread


def drained(q):
    out = []
    while True:
        try:
            out.append(q.get_nowait())
        except queue.Empty:
            return out


def test_a_badge_lying_on_the_reader_is_one_event_and_a_second_tap_another():
    reader, clock = FakeReader(), Clock()
    thread = stepped(reader, clock)
    reader.present(UID)
    for _ in range(5):  # lies there for 5 polls
        thread._poll()
        clock.t += 0.3
    assert [e.uid for e in drained(thread.events)] == [UID.hex()]
    reader.remove()
    thread._poll()
    clock.t += 0.5
    reader.present(UID)  # taken away for half a second: the same tap, wobbling
    thread._poll()
    assert drained(thread.events) == []
    reader.remove()
    clock.t += 3.0
    thread._poll()
    reader.present(UID)  # a second tap
    thread._poll()
    other = bytes.fromhex("08112233")
    reader.present(other)  # another badge at once
    thread._poll()
    assert [e.uid for e in drained(thread.events)] == [UID.hex(), "08112233"]


def test_a_full_queue_drops_and_counts_the_badge_instead_of_waiting():
    reader, clock = FakeReader(), Clock()
    thread = BadgeReaderThread(lambda: reader, queue.Queue(maxsize=1), poll_s=0.0, clock=clock)
    assert thread._open_reader()
    for uid in ("01020304", "05060708"):
        reader.present(bytes.fromhex(uid))
        thread._poll()
    assert thread.dropped == 1 and thread.events.get_nowait().uid == "01020304"


def test_a_failing_reader_is_a_fault_and_is_opened_again():
    reader = FakeReader()
    opened = []

    def open_reader():
        opened.append(1)
        if len(opened) == 1:
            raise NfcError("no PN532 answers at I2C address 0x24 on bus 1")
        return reader

    thread = BadgeReaderThread(open_reader, poll_s=0.01, retry_s=0.01)
    thread.start()
    try:
        assert wait_for(lambda: len(opened) >= 2 and thread.fault is None)
        reader.fail = OSError(121, "Remote I/O error")
        assert wait_for(lambda: thread.fault is not None and "Remote I/O error" in thread.fault)
        assert wait_for(lambda: reader.closed >= 1)  # given up and opened afresh, not polled in a loop
        reader.fail = None
        reader.present(UID)
        event = thread.events.get(timeout=5)
        assert isinstance(event, BadgeSeen) and event.uid == UID.hex() and thread.fault is None
    finally:
        thread.stop()
    assert not thread.is_alive()


def test_the_thread_reads_badges_through_the_real_adapter():
    bus = FakePn532Bus(None, busy_polls=2)
    thread = BadgeReaderThread(lambda: open_pn532(1, bus=bus), poll_s=0.05)
    thread.start()
    try:
        assert wait_for(lambda: any(c == 0x4A for c, _ in bus.commands))
        bus.uid = UID
        assert thread.events.get(timeout=5).uid == UID.hex()
    finally:
        thread.stop()
    assert bus.closed
