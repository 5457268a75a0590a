"""The PN532 NFC reader over I2C (the common Pi NFC HAT): just enough of the chip to read a badge's UID.

The interface follows Adafruit's CircuitPython driver (``adafruit_pn532.i2c.PN532_I2C``):
``read_passive_target(card_baud, timeout)`` returns the UID of an ISO 14443A card in the field as bytes,
or None when there is none, so a reader built on that driver could stand in for this one. Why not that
driver itself: it needs Adafruit-Blinka (``board``, ``busio``, ``digitalio``, the bus-device library and
Blinka's platform detection) to send three commands, while smbus2 is already here (luma.core uses it,
and so does the battery gauge). The frames below are those of NXP's PN532 user manual (UM0701-02,
§6.2 frame format, §6.2.4 I2C) and Adafruit's driver.

Two differences to the Adafruit driver, both so that the chip is never left busy: the passive
activation retries are set to a finite number (RFConfiguration item 5), so InListPassiveTarget always
answers (with no target when no card is there) instead of waiting for a card until the next command
aborts it; and "no answer at all" is an error (the chip is gone), not "no card".

As luma does, the bus is injected and smbus2 is imported only when none is given: the tests put a fake
chip behind smbus2's own ``i2c_msg`` messages.
"""

from __future__ import annotations

import errno
import logging
import time
from typing import Callable

from base.errors import BodycamError

logger = logging.getLogger(__name__)

DEFAULT_ADDRESS = 0x24
ISO14443A_106K = 0x00
_HOST_TO_PN532, _PN532_TO_HOST = 0xD4, 0xD5
_ACK = bytes((0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00))
_GET_FIRMWARE_VERSION = 0x02
_SAM_CONFIGURATION = 0x14
_RF_CONFIGURATION = 0x32
_IN_LIST_PASSIVE_TARGET = 0x4A
#: InListPassiveTarget gives up after this many activation attempts (about 0.1 s each at most).
PASSIVE_RETRIES = 0x02
#: How often the status byte is polled while the chip works.
_POLL_S = 0.01


class NfcError(BodycamError):
    """The NFC reader cannot be opened or does not answer as a PN532 does; the message says what to check."""


class Pn532I2C:
    """A PN532 on an I2C bus. Not thread-safe: one owner (the badge reader thread)."""

    def __init__(self, port: int = 1, address: int = DEFAULT_ADDRESS, bus=None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic):
        if bus is None:
            from smbus2 import SMBus  # imported only when a reader is configured

            try:
                bus = SMBus(port)
            except FileNotFoundError:
                raise NfcError(f"no I2C bus /dev/i2c-{port}: enable I2C (raspi-config → Interface Options → "
                               "I2C) or set checkout.nfc_i2c_port") from None
            except PermissionError:
                raise NfcError(f"no permission to open /dev/i2c-{port}: put the agent's user in the 'i2c' "
                               "group") from None
        from smbus2 import i2c_msg

        self._msg = i2c_msg
        self.bus, self.port, self.address = bus, port, address
        self._sleep, self._clock = sleep, clock

    def begin(self) -> tuple[int, int, int, int]:
        """Wake the chip, check it is a PN532, configure it for reading cards; returns (IC, ver, rev, support)."""
        firmware = self.firmware_version()
        self._call(_SAM_CONFIGURATION, (0x01, 0x14, 0x00), 0)  # normal mode, 1 s virtual-card timeout, no IRQ
        self._call(_RF_CONFIGURATION, (0x05, 0xFF, 0x01, PASSIVE_RETRIES), 0)  # MxRtyATR, MxRtyPSL, MxRtyPassive
        return firmware

    def firmware_version(self) -> tuple[int, int, int, int]:
        response = self._call(_GET_FIRMWARE_VERSION, (), 4)
        if response is None or len(response) != 4:
            raise NfcError(f"no PN532 answers at I2C address 0x{self.address:02x} on bus {self.port}: check the "
                           "HAT's wiring and that its switches select I2C ('i2cdetect -y "
                           f"{self.port}' must show 24)")
        return tuple(response)

    def read_passive_target(self, card_baud: int = ISO14443A_106K, timeout: float = 1.0) -> bytes | None:
        """The UID of one card in the field, or None when there is none (Adafruit's interface)."""
        response = self._call(_IN_LIST_PASSIVE_TARGET, (0x01, card_baud), 19, timeout)
        if response is None:
            raise NfcError(f"the PN532 at 0x{self.address:02x} stopped answering (no response within {timeout:g} s)")
        if not response or response[0] == 0:
            return None
        if len(response) < 6 or response[5] > 10 or len(response) < 6 + response[5]:
            raise NfcError(f"the PN532 sent a target description that does not parse: {response.hex()}")
        return bytes(response[6:6 + response[5]])

    def close(self) -> None:
        close = getattr(self.bus, "close", None)
        if close is not None:
            close()

    # -- frames --------------------------------------------------------------------------------------
    def _call(self, command: int, params: tuple[int, ...], response_length: int,
              timeout: float = 1.0) -> bytes | None:
        """Send a command frame, take the ACK, return the response's data after TFI and code (None: silent)."""
        self._write(_frame(bytes((_HOST_TO_PN532, command, *params))))
        if not self._wait_ready(timeout):
            return None
        ack = self._read(len(_ACK))
        if ack != _ACK:
            raise NfcError(f"the PN532 did not acknowledge command 0x{command:02x} (got {ack.hex()})")
        if not self._wait_ready(timeout):
            return None
        data = _unframe(self._read(response_length + 2 + 8))
        if len(data) < 2 or data[0] != _PN532_TO_HOST or data[1] != command + 1:
            raise NfcError(f"the PN532 answered command 0x{command:02x} with {data[:2].hex()}")
        return data[2:]

    def _wait_ready(self, timeout: float) -> bool:
        """Poll the status byte; the chip NACKs its address while busy, which is not an error here."""
        deadline = self._clock() + timeout
        while True:
            try:
                if self._transfer_read(1)[0] == 0x01:
                    return True
            except OSError as exc:
                if exc.errno not in (errno.EREMOTEIO, errno.EIO, errno.ETIMEDOUT, errno.EAGAIN):
                    raise NfcError(f"I2C bus {self.port}: {exc.strerror or exc}") from exc
            if self._clock() >= deadline:
                return False
            self._sleep(_POLL_S)

    def _read(self, count: int) -> bytes:
        """``count`` bytes after the status byte, which must say ready."""
        data = self._transfer_read(count + 1)
        if data[0] != 0x01:
            raise NfcError("the PN532 was not ready when its answer was read")
        return data[1:]

    def _transfer_read(self, count: int) -> bytes:
        msg = self._msg.read(self.address, count)
        self.bus.i2c_rdwr(msg)
        return bytes(msg)

    def _write(self, data: bytes) -> None:
        try:
            self.bus.i2c_rdwr(self._msg.write(self.address, data))
        except OSError as exc:
            raise NfcError(f"cannot write to the PN532 at 0x{self.address:02x} on I2C bus {self.port}: "
                           f"{exc.strerror or exc}") from exc


def open_pn532(port: int, address: int = DEFAULT_ADDRESS, bus=None) -> Pn532I2C:
    """A PN532 ready to read badges (checked and configured); what the badge reader thread opens."""
    reader = Pn532I2C(port, address, bus)
    try:
        ic, version, revision, _ = reader.begin()
    except BaseException:
        reader.close()
        raise
    logger.info("NFC reader: PN5%02x firmware %d.%d on I2C bus %d at 0x%02x", ic, version, revision, port, address)
    return reader


def _frame(data: bytes) -> bytes:
    """Preamble, start code, length and its checksum, data, data checksum, postamble (UM0701-02 §6.2.1.1)."""
    length = len(data)
    return bytes((0x00, 0x00, 0xFF, length, (-length) & 0xFF, *data, (-sum(data)) & 0xFF, 0x00))


def _unframe(raw: bytes) -> bytes:
    """The data of a normal information frame, checksums checked."""
    at = 0
    while at < len(raw) and raw[at] == 0x00:
        at += 1
    if at + 2 >= len(raw) or raw[at] != 0xFF:
        raise NfcError(f"the PN532's answer has no start code: {raw[:8].hex()}")
    length, check = raw[at + 1], raw[at + 2]
    if (length + check) & 0xFF:
        raise NfcError("the PN532's answer has a bad length checksum")
    data = raw[at + 3:at + 3 + length]
    if len(data) != length or at + 3 + length >= len(raw) or (sum(data) + raw[at + 3 + length]) & 0xFF:
        raise NfcError("the PN532's answer has a bad data checksum (interference on the bus?)")
    return data
