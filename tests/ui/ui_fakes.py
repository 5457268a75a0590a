"""Test doubles shared by the display tests: an I2C bus you can unplug, and a polling wait."""

from __future__ import annotations

import errno
from tests.support import wait_for as _wait_for


class FakeBus:
    """An smbus-like I2C bus; ``unplug()`` makes every transfer fail as a pulled cable does (EREMOTEIO)."""

    def __init__(self):
        self.written = 0
        self.commands: list[list[int]] = []
        self.plugged = True
        self.closed = False

    def write_i2c_block_data(self, address, register, data):
        if not self.plugged:
            raise OSError(errno.EREMOTEIO, "Remote I/O error")
        if register == 0x00:
            self.commands.append(list(data))
        else:
            self.written += len(data)

    def unplug(self):
        self.plugged = False

    def replug(self):
        self.plugged = True

    def close(self):
        self.closed = True


def wait_for(predicate, timeout=3.0) -> bool:
    """tests.support.wait_for, polled often: the UI tests time button presses in milliseconds."""
    return _wait_for(predicate, timeout, interval=0.005)
