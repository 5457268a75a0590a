"""Fakes for officer check-out's NFC reader, on the two interfaces the code uses.

:class:`FakePn532Bus` is a PN532 chip behind smbus2's ``i2c_rdwr``: it receives the real ``i2c_msg``
messages the adapter builds (as the kernel would), checks every frame's checksums, answers with an ACK
and a response frame, and NACKs its address (EREMOTEIO) while "busy", as the chip does. :class:`FakeReader`
follows the documented reader interface (Adafruit's ``read_passive_target``) for the badge thread.
"""

from __future__ import annotations

import ctypes
import errno
import threading

ACK = bytes((0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00))


def frame(data: bytes) -> bytes:
    return bytes((0x00, 0x00, 0xFF, len(data), (-len(data)) & 0xFF, *data, (-sum(data)) & 0xFF, 0x00))


class FakePn532Bus:
    """A PN532 at 0x24 with a card (``uid``) in its field or none; ``present=False``: nothing on the bus."""

    def __init__(self, uid: bytes | None = None, *, present: bool = True, busy_polls: int = 1,
                 firmware=(0x32, 0x01, 0x06, 0x07)):
        self.uid = uid
        self.present = present
        self.busy_polls = busy_polls  # status polls answered with a NACK before each answer is ready
        self.firmware = firmware
        self.commands: list[tuple[int, bytes]] = []  # (command, params) as received
        self.corrupt_next = False
        self._pending: list[bytes] = []
        self._busy = 0
        self.closed = False

    def i2c_rdwr(self, *messages) -> None:
        for msg in messages:
            if not self.present:
                raise OSError(errno.EREMOTEIO, "Remote I/O error")
            assert msg.addr == 0x24, hex(msg.addr)
            if msg.flags & 0x0001:
                self._read(msg)
            else:
                self._write(bytes(msg))

    def close(self) -> None:
        self.closed = True

    def _write(self, raw: bytes) -> None:
        assert raw[:3] == b"\x00\x00\xff", raw.hex()
        length, lcs = raw[3], raw[4]
        assert (length + lcs) & 0xFF == 0, "bad length checksum"
        data, dcs = raw[5:5 + length], raw[5 + length]
        assert (sum(data) + dcs) & 0xFF == 0, "bad data checksum"
        assert raw[6 + length] == 0x00 and data[0] == 0xD4
        command, params = data[1], bytes(data[2:])
        self.commands.append((command, params))
        answer = {0x02: bytes(self.firmware), 0x14: b"", 0x32: b""}.get(command)
        if command == 0x4A:
            assert params[0] == 0x01  # one target at most
            answer = (b"\x00" if self.uid is None else
                      bytes((0x01, 0x01, 0x00, 0x44, 0x00, len(self.uid))) + self.uid)
        assert answer is not None, f"unexpected command 0x{command:02x}"
        response = frame(bytes((0xD5, command + 1)) + answer)
        if self.corrupt_next:
            response = response[:-2] + bytes(((response[-2] + 1) & 0xFF,)) + response[-1:]
            self.corrupt_next = False
        self._pending = [ACK, response]
        self._busy = self.busy_polls

    def _read(self, msg) -> None:
        if self._busy:
            self._busy -= 1
            raise OSError(errno.EREMOTEIO, "Remote I/O error")  # the chip NACKs while it works
        ready = bool(self._pending)
        body = self._pending[0] if ready and msg.len > 1 else b""
        if ready and msg.len > 1:
            self._pending.pop(0)
            self._busy = self.busy_polls if self._pending else 0
        out = (bytes((0x01 if ready else 0x00,)) + body + bytes(msg.len))[:msg.len]
        ctypes.memmove(msg.buf, out, msg.len)


class FakeReader:
    """Adafruit's documented reader interface, driven by the test: ``present(uid)`` / ``remove()``."""

    def __init__(self):
        self._uid: bytes | None = None
        self._lock = threading.Lock()
        self.fail: Exception | None = None
        self.reads = 0
        self.closed = 0

    def present(self, uid: bytes) -> None:
        with self._lock:
            self._uid = uid

    def remove(self) -> None:
        with self._lock:
            self._uid = None

    def read_passive_target(self, card_baud: int = 0, timeout: float = 1.0) -> bytes | None:
        with self._lock:
            self.reads += 1
            if self.fail is not None:
                raise self.fail
            return self._uid

    def close(self) -> None:
        self.closed += 1
