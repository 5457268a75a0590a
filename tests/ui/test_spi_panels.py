"""The SPI panels: config that names the bad key, luma's real drivers on a fake SPI bus and gpiozero's
mock pins, RGB565 frames on the TFTs, the PWM backlight, and a failing panel retried and reported."""

from __future__ import annotations

import dataclasses
import errno
import time

import numpy as np
import pytest
from gpiozero import DigitalOutputDevice
from gpiozero.pins.mock import MockFactory, MockPWMPin

from base.config import parse_section
from base.errors import ConfigError
from ui.display import DisplayError, DisplayThread, build_display_thread, open_device, screen_spec
from ui.picture import rgb565
from ui.screens import COLOUR, GREY, render
from ui.settings import DisplayConfig
from ui.state import OfficerState
from ui_cases import CASES, view


class FakeSpiDev:
    """spidev.SpiDev's surface luma uses; records every write. ``missing`` acts like an absent /dev/spidev."""

    def __init__(self, missing: bool = False):
        self.missing = missing
        self.writes: list[bytes] = []
        self.opened = None
        self.closed = False
        self.max_speed_hz = 0
        self.mode = 0

    def open(self, port, device):
        if self.missing:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory")
        self.opened = (port, device)

    def writebytes(self, data):
        self.writes.append(bytes(data))

    def close(self):
        self.closed = True


@pytest.fixture
def pins():
    factory = MockFactory(pin_class=MockPWMPin)
    try:
        yield factory
    finally:
        factory.reset()


def config(**kw) -> DisplayConfig:
    return parse_section(DisplayConfig, kw, "display", "agent.toml")


TFT = dict(driver="st7789", width=320, height=240)


# -- config -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("table, expected", [
    ({"driver": "st7789"}, r"display\.width/display\.height = 128x64 is not a size the st7789 driver supports "
                           r"\(allowed: 320x240, 240x240\)"),
    ({"driver": "ssd1322", "width": 128, "height": 64}, r"128x64 is not a size the ssd1322 driver supports"),
    ({**TFT, "dc_pin": 10}, r"agent\.toml: display\.dc_pin = 10: GPIO10 is one of SPI0's own pins"),
    ({**TFT, "reset_pin": 2}, r"display\.reset_pin = 2: GPIO2 is I2C SDA/SCL"),
    ({**TFT, "backlight_pin": 22}, r"display\.backlight_pin = 22 is already used by display\.dc_pin"),
    ({**TFT, "dc_pin": 40}, r"display\.dc_pin = 40 is out of range"),
    ({**TFT, "spi_port": 9}, r"display\.spi_port = 9 is out of range"),
    ({**TFT, "spi_speed_mhz": 3}, r"display\.spi_speed_mhz = 3 is not a clock luma.s SPI interface takes"),
    ({"driver": "ssd1322", "width": 256, "panel": "colour"},
     r"display\.panel = 'colour', but a ssd1322 is a grey panel"),
    ({"driver": "dummy", "panel": "purple"}, r"display\.panel = 'purple' is not one of"),
])
def test_bad_spi_display_values_name_the_key(table, expected):
    with pytest.raises(ConfigError, match=expected):
        config(**table)


def test_a_tft_backlight_pin_is_not_checked_on_an_oled():
    cfg = config(driver="ssd1351", width=128, height=128, backlight_pin=22)  # an OLED has no backlight
    assert cfg.pixels == "colour" and "backlight_pin" not in cfg.spi_pins()


@pytest.mark.parametrize("table, mode, size", [
    ({"driver": "ssd1322", "width": 256}, GREY, (256, 64)),
    ({"driver": "ssd1362", "width": 256}, GREY, (256, 64)),
    ({"driver": "ssd1351", "height": 128}, COLOUR, (128, 128)),
    (TFT, COLOUR, (320, 240)),
    ({**TFT, "driver": "ili9341"}, COLOUR, (320, 240)),
    ({"driver": "emulator", "panel": "grey", "width": 256}, GREY, (256, 64)),
    ({"driver": "dummy", "panel": "colour", "width": 320, "height": 240, "rotation": 1}, COLOUR, (240, 320)),
])
def test_the_driver_picks_the_size_class(table, mode, size):
    spec = screen_spec(config(**table))
    assert (spec.mode, (spec.width, spec.height)) == (mode, size)


# -- the drivers --------------------------------------------------------------------------------------
@pytest.mark.parametrize("table", [{"driver": "ssd1322", "width": 256}, {"driver": "ssd1362", "width": 256},
                                   {"driver": "ssd1351", "height": 128}, TFT, {**TFT, "driver": "ili9341"}],
                         ids=lambda t: t["driver"])
def test_each_spi_panel_opens_shows_a_frame_and_releases_its_pins(table, pins):
    cfg = config(**table)
    bus = FakeSpiDev()
    device = open_device(cfg, spi=bus, pin_factory=pins)
    assert bus.opened == (0, 0) and bus.max_speed_hz == 32_000_000
    frame = render(CASES["recording"], screen_spec(cfg)).convert(device.mode)
    before = len(bus.writes)
    device.display(frame)
    assert len(bus.writes) > before
    device.cleanup()
    assert bus.closed
    again = open_device(cfg, spi=FakeSpiDev(), pin_factory=pins)  # the DC and reset pins were given back
    again.cleanup()


@pytest.mark.parametrize("driver", ["st7789", "ili9341"])
def test_tft_frames_go_out_as_rgb565(driver, pins):
    cfg = config(**{**TFT, "driver": driver})
    bus = FakeSpiDev()
    device = open_device(cfg, spi=bus, pin_factory=pins)
    frame = render(CASES["recording"], screen_spec(cfg))
    bus.writes.clear()
    device.display(frame)
    sent = b"".join(w for w in bus.writes if len(w) > 16)  # pixel data, not the window commands
    assert sent == rgb565(np.asarray(frame))
    assert len(sent) == 320 * 240 * 2  # 1.2 Mbit a frame
    device.cleanup()


def test_tft_switches_the_controller_to_16_bit_pixels(pins):
    bus = FakeSpiDev()
    open_device(config(**TFT), spi=bus, pin_factory=pins).cleanup()
    colmods = [bus.writes[i + 1] for i, w in enumerate(bus.writes[:-1]) if w == b"\x3a"]
    assert colmods[-1] == b"\x55"  # after luma's own 18-bit setting


def test_tft_backlight_is_pwm_at_the_configured_level_and_off_on_cleanup(pins):
    device = open_device(config(**TFT, backlight_percent=60), spi=FakeSpiDev(), pin_factory=pins)
    light = pins.pin(18)
    assert light.state == pytest.approx(0.6)
    device.cleanup()
    assert light.state == 0


def test_tft_without_a_backlight_pin(pins):
    device = open_device(config(**TFT, backlight_pin=0), spi=FakeSpiDev(), pin_factory=pins)
    device.cleanup()


def test_a_missing_spi_bus_is_a_sentence_naming_the_keys(pins):
    with pytest.raises(DisplayError, match=r"/dev/spidev0\.0 does not exist; enable SPI .* display\.spi_port and "
                                           r"display\.spi_device"):
        open_device(config(**TFT), spi=FakeSpiDev(missing=True), pin_factory=pins)
    open_device(config(**TFT), spi=FakeSpiDev(), pin_factory=pins).cleanup()  # nothing was left claimed


def test_a_pin_in_use_names_its_key(pins):
    other = DigitalOutputDevice(27, pin_factory=pins)
    try:
        with pytest.raises(DisplayError, match=r"display\.reset_pin = 27 cannot be used"):
            open_device(config(**TFT), spi=FakeSpiDev(), pin_factory=pins)
    finally:
        other.close()
    open_device(config(**TFT), spi=FakeSpiDev(), pin_factory=pins).cleanup()


def test_a_failing_tft_is_retried_and_reported(pins):
    """The bus is missing for the first attempts, then appears: a fault while it is gone, frames after."""
    buses = [FakeSpiDev(missing=True), FakeSpiDev(missing=True), FakeSpiDev()]
    cfg = config(**TFT)
    thread = DisplayThread(lambda: open_device(cfg, spi=buses.pop(0), pin_factory=pins),
                           lambda: view(OfficerState.RECORDING), lambda v: render(v, screen_spec(cfg)),
                           fps=50, retry_first_s=0.01, retry_max_s=0.02)
    faults = []
    thread._on_fault = faults.append
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while thread.frames_pushed == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        thread.stop()
    assert thread.frames_pushed > 0 and thread.fault is None
    assert "does not exist; enable SPI" in str(faults[0]) and faults[-1] is None


def test_build_display_thread_names_the_spi_bus():
    thread = build_display_thread(config(**TFT), lambda: view())
    assert thread._where == "SPI bus /dev/spidev0.0"


def test_grey_frames_reach_the_grey_oled_as_rgb(pins):
    """luma's grey OLEDs take RGB; the display thread converts the grey screens on the way."""
    cfg = config(driver="ssd1322", width=256)
    bus = FakeSpiDev()
    thread = DisplayThread(lambda: open_device(cfg, spi=bus, pin_factory=pins), lambda: view(),
                           lambda v: render(v, screen_spec(cfg)), fps=50)
    thread._frame()
    assert thread.frames_pushed == 1 and thread.fault is None
    thread._device.cleanup()


def test_dummy_and_emulator_show_the_panel_they_are_told(tmp_path):
    dummy = open_device(config(driver="dummy", panel="colour", width=320, height=240))
    assert (dummy.mode, dummy.size) == ("RGB", (320, 240))
    cfg = config(driver="emulator", panel="grey", width=256, emulator_path=str(tmp_path / "f.png"))
    thread = build_display_thread(cfg, lambda: dataclasses.replace(CASES["standby"]))
    thread._frame()
    assert thread.frames_pushed == 1
    thread._device.cleanup()


@pytest.mark.parametrize("driver, size", [("ssd1322", (256, 64)), ("ssd1362", (256, 64)), ("ssd1351", (128, 128))])
@pytest.mark.parametrize("rotation", [0, 1, 2, 3])
def test_numpy_packing_sends_lumas_own_bytes(driver, size, rotation, pins):
    """Every frame of a sequence (whole and partial redraws) goes out byte for byte as luma's stock driver sends it."""
    from luma.core.interface.serial import spi as spi_interface
    from luma.oled import device as stock

    from ui.spi import OLEDS, GpiozeroGPIO

    width, height = size
    spec = screen_spec(config(driver=driver, width=width, height=height, rotation=rotation))
    frames = [render(CASES[name], spec).convert("RGB") for name in ("standby", "recording", "recording_dot_off",
                                                                       "mirror", "alert_several")]
    sent = []
    for cls in (getattr(stock, driver), OLEDS[driver]):
        bus = FakeSpiDev()
        gpio = GpiozeroGPIO(pins)
        device = cls(spi_interface(spi=bus, gpio=gpio, gpio_DC=22, gpio_RST=27), width=width, height=height,
                     rotate=rotation)
        bus.writes.clear()
        for frame in frames:
            device.display(frame)
        sent.append(bus.writes)
        device.cleanup()
        gpio.cleanup()
    assert len(sent[0]) > len(frames)
    assert sent[0] == sent[1]
