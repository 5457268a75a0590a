import pytest

from base.config import parse_section
from base.errors import ConfigError
from agent.sensors import BatteryConfig, BatteryMonitor, cpu_temperature_c, throttling, wifi_link


class FakeBus:
    """SMBus double for a MAX17048 at 0x36: 3.9 V, 87.5 %, sent big-endian as the chip does."""

    def __init__(self, fail=False):
        self.fail = fail

    def read_word_data(self, address, register):
        if self.fail:
            raise OSError(121, "Remote I/O error")
        assert address == 0x36
        value = {0x02: round(3.9 / 78.125e-6), 0x04: round(87.5 * 256)}[register]
        return ((value & 0xFF) << 8) | (value >> 8)


def test_fuel_gauge_reads_charge_and_voltage():
    monitor = BatteryMonitor(BatteryConfig(source="max17048"), bus=FakeBus())
    reading = monitor.read()
    assert reading.percent == 87.5 and reading.voltage == pytest.approx(3.9, abs=1e-3)


def test_a_failing_gauge_is_a_fault_not_a_crash():
    monitor = BatteryMonitor(BatteryConfig(source="max17048"), bus=FakeBus(fail=True))
    assert monitor.read() is None and "Remote I/O error" in monitor.fault


def test_no_gauge_means_unknown():
    assert BatteryMonitor(BatteryConfig()).read() is None


def test_bad_battery_config_names_the_key():
    with pytest.raises(ConfigError, match=r"agent.toml: battery.source = 'ups' is not one of"):
        parse_section(BatteryConfig, {"source": "ups"}, "battery", "agent.toml")


def test_system_readers(tmp_path):
    (tmp_path / "temp").write_text("52123\n")
    (tmp_path / "thr").write_text("0x50005\n")
    (tmp_path / "wl").write_text("Inter-| sta-|   Quality        |   Discarded packets\n"
                                 " face | tus | link level noise |  nwid  crypt   frag\n"
                                 " wlan0: 0000   54.  -56.  -256        0      0      0\n")
    assert cpu_temperature_c(tmp_path / "temp") == 52.1
    assert throttling(tmp_path / "thr") == ["under-voltage", "throttled", "under-voltage-occurred",
                                            "throttling-occurred"]
    assert wifi_link(tmp_path / "wl") == {"interface": "wlan0", "quality": 54.0, "signal_dbm": -56.0}
    assert cpu_temperature_c(tmp_path / "none") is None and throttling(tmp_path / "none") is None
