"""The [checkout] config section, apart from :mod:`.checkout`: the config loader imports it, and install.sh
validates configs with Debian's plain python3 before the project's venv (cryptography and the rest) exists."""

from __future__ import annotations

from dataclasses import dataclass

from base.config import option


@dataclass(frozen=True)
class CheckoutConfig:
    enabled: bool = option(False, "Officer check-out: the device is assigned to an officer for a shift (NFC badge "
                                  "or the back office's assign command); manifests, audit lines, display and "
                                  "telemetry name the officer's pseudonymous id.")
    badges: str = option("/etc/bodycam/badges.toml", "The badge table the back office provisions: badge UID -> "
                                                     "pseudonymous officer id (never names).")
    nfc_reader: str = option("none", "NFC badge reader: none, or pn532 (the PN532 NFC HAT over I2C).",
                             choices=("none", "pn532"))
    nfc_i2c_port: int = option(1, "I2C bus of the NFC reader (/dev/i2c-N).", min=0, max=10)
    nfc_i2c_address: int = option(0x24, "I2C address of the PN532 (0x24 = 36).", min=0x03, max=0x77)
    dock_seconds: float = option(10.0, "In the dock (controls.dock_pin) this long, not recording and with every "
                                       "segment delivered: the shift is over and the device is unassigned.",
                                 min=1.0, max=3600.0)
