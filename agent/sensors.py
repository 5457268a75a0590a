"""Readings about the device itself: battery, CPU temperature and throttling, Wi-Fi link.

Each reader returns None when the machine has no such thing (a laptop has no throttling flags, a
Pi without a UPS HAT has no fuel gauge), so telemetry says "unknown" instead of inventing a value.
The battery source is pluggable by name, like the camera backends.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from base.config import option
from base.errors import ConfigError

logger = logging.getLogger(__name__)

THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")
THROTTLED = Path("/sys/devices/platform/soc/soc:firmware/get_throttled")
WIRELESS = Path("/proc/net/wireless")

#: Bits of the Pi firmware's get_throttled word that matter to IT.
THROTTLE_FLAGS = {0: "under-voltage", 1: "arm-frequency-capped", 2: "throttled", 3: "soft-temperature-limit",
                  16: "under-voltage-occurred", 17: "arm-frequency-capped-occurred", 18: "throttling-occurred",
                  19: "soft-temperature-limit-occurred"}


@dataclass(frozen=True)
class BatteryConfig:
    source: str = option("none", "Battery gauge: none (telemetry says unknown) or max17048 (UPS HATs' fuel gauge "
                                 "over I2C).", choices=("none", "max17048"))
    i2c_port: int = option(1, "I2C bus of the fuel gauge.", min=0, max=20)
    i2c_address: int = option(0x36, "I2C address of the fuel gauge (MAX17048: 0x36 = 54).", min=3, max=119)
    low_percent: float = option(15.0, "Below this charge the display and telemetry raise a low-battery alert.",
                                min=0.0, max=100.0)


@dataclass(frozen=True)
class BatteryReading:
    percent: float
    voltage: float


class Max17048:
    """The MAX17048/MAX17049 fuel gauge found on common Pi UPS HATs (SOC and VCELL registers)."""

    REG_VCELL, REG_SOC = 0x02, 0x04

    def __init__(self, port: int, address: int, bus=None):
        if bus is None:
            from smbus2 import SMBus  # imported only when a gauge is configured (luma.core depends on smbus2)

            bus = SMBus(port)
        self.bus = bus
        self.address = address

    def _word(self, register: int) -> int:
        raw = self.bus.read_word_data(self.address, register)
        return ((raw & 0xFF) << 8) | (raw >> 8)  # SMBus reads little-endian; the gauge sends big-endian

    def read(self) -> BatteryReading:
        soc = self._word(self.REG_SOC)
        vcell = self._word(self.REG_VCELL)
        return BatteryReading(percent=min(100.0, round(soc / 256.0, 1)), voltage=round(vcell * 78.125e-6, 3))


class BatteryMonitor:
    """The configured battery source; ``read()`` is None when there is none or it cannot be read."""

    def __init__(self, cfg: BatteryConfig, bus=None):
        self.cfg = cfg
        self.fault: str | None = None
        self._gauge = None
        if cfg.source == "max17048":
            try:
                self._gauge = Max17048(cfg.i2c_port, cfg.i2c_address, bus)
            except (OSError, ImportError) as exc:
                self.fault = f"battery gauge on I2C bus {cfg.i2c_port} cannot be opened ({exc})"
                logger.error("%s", self.fault)
        elif cfg.source != "none":
            raise ConfigError(f"battery.source must be none or max17048, not {cfg.source!r}")

    def read(self) -> BatteryReading | None:
        if self._gauge is None:
            return None
        try:
            reading = self._gauge.read()
        except OSError as exc:
            if self.fault is None:
                logger.error("battery gauge read failed: %s", exc)
            self.fault = f"battery gauge read failed ({exc.strerror or exc})"
            return None
        self.fault = None
        return reading


def cpu_temperature_c(path: Path = THERMAL_ZONE) -> float | None:
    try:
        return round(int(path.read_text().strip()) / 1000.0, 1)
    except (OSError, ValueError):
        return None


def throttling(path: Path = THROTTLED) -> list[str] | None:
    """The Pi firmware's throttling flags by name; None off a Pi."""
    try:
        word = int(path.read_text().strip(), 16)
    except (OSError, ValueError):
        return None
    return [name for bit, name in THROTTLE_FLAGS.items() if word & (1 << bit)]


def wifi_link(path: Path = WIRELESS) -> dict | None:
    """Interface, link quality (0-70 on most drivers) and signal level in dBm, from /proc/net/wireless."""
    try:
        lines = path.read_text().splitlines()[2:]
    except OSError:
        return None
    for line in lines:
        name, _, rest = line.partition(":")
        fields = rest.split()
        if len(fields) >= 3:
            try:
                return {"interface": name.strip(), "quality": float(fields[1].rstrip(".")),
                        "signal_dbm": float(fields[2].rstrip("."))}
            except ValueError:
                continue
    return None
