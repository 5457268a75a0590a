"""[display] and [controls]: defaults are valid, and every bad value is an error that names its key."""

from __future__ import annotations

import re

import pytest

from base.config import parse_section
from base.errors import ConfigError
from ui.controls import ControlsThread
from ui.display import open_device
from ui.gpio import ControlsError, pin_factory
from ui.indicators import IndicatorThread
from ui.settings import ControlsConfig, DisplayConfig


def test_defaults_are_valid():
    assert parse_section(DisplayConfig, {}, "display") == DisplayConfig()
    assert parse_section(ControlsConfig, {}, "controls") == ControlsConfig()
    cfg = parse_section(DisplayConfig, {"driver": "sh1106", "i2c_address": 0x3D, "rotation": 2, "language": "en",
                                        "width": 128, "height": 128}, "display")
    assert (cfg.driver, cfg.i2c_address, cfg.rotation, cfg.language, cfg.height) == ("sh1106", 0x3D, 2, "en", 128)


@pytest.mark.parametrize("table, expected", [
    ({"driver": "ssd1331"}, r"agent\.toml: display\.driver = 'ssd1331' is not one of: dummy, emulator, ssd1306"),
    ({"driver": 1306}, r"display\.driver must be a string"),
    ({"rotation": 4}, r"display\.rotation = 4 is out of range \(allowed 0\.\.3\)"),
    ({"contrast": 300}, r"display\.contrast = 300 is out of range"),
    ({"i2c_address": 0x80}, r"display\.i2c_address = 128 is out of range"),
    ({"i2c_address": "0x3C"}, r"display\.i2c_address must be a whole number, not string '0x3C'"),
    ({"language": "fr"}, r"display\.language = 'fr' is not one of: de, en"),
    ({"fps": 0}, r"display\.fps = 0\.0 is out of range"),
    ({"dither": "atkinson"}, r"display\.dither = 'atkinson' is not one of"),
    ({"driver": "ssd1306", "height": 128}, r"display\.width/display\.height = 128x128 is not a size the ssd1306 "
                                           r"driver supports"),
    ({"driver": "emulator", "emulator_path": "out.bmp"}, r"display\.emulator_path = 'out\.bmp' must end in \.gif"),
    ({"brightness": 3}, r"display\.brightness: unknown key"),
])
def test_bad_display_values_name_the_key(table, expected):
    with pytest.raises(ConfigError, match=expected):
        parse_section(DisplayConfig, table, "display", "agent.toml")


@pytest.mark.parametrize("table, expected", [
    ({"button_pin": 40}, r"agent\.toml: controls\.button_pin = 40 is out of range \(allowed 1\.\.27\)"),
    ({"button_pin": 0}, r"controls\.button_pin = 0 is out of range"),
    ({"button_pin": -4}, r"controls\.button_pin = -4 is out of range"),
    ({"button_pin": "GPIO17"}, r"controls\.button_pin must be a whole number, not string 'GPIO17'"),
    ({"led_red_pin": 17.5}, r"controls\.led_red_pin must be a whole number"),
    ({"buzzer_pin": 99}, r"controls\.buzzer_pin = 99 is out of range \(allowed 0\.\.27\)"),
    ({"led_green_pin": 17}, r"controls\.led_green_pin = 17 is already used by controls\.button_pin"),
    ({"trigger_pin": 3}, r"controls\.trigger_pin = 3: GPIO3 is I2C SDA/SCL, taken by the front display"),
    ({"hold_seconds": 2.5}, r"controls\.long_hold_seconds = 3 must be at least controls\.hold_seconds \(2\.5\) \+ 1"),
    ({"hold_seconds": 0.1}, r"controls\.hold_seconds = 0\.1 is out of range"),
    ({"reminder_seconds": 5}, r"controls\.reminder_seconds = 5 must be 0 \(off\) or at least 10"),
    ({"pin_factory": "wiringpi"}, r"controls\.pin_factory = 'wiringpi' is not one of: auto, lgpio"),
    ({"buton_pin": 5}, r"controls\.buton_pin: unknown key"),
])
def test_bad_controls_values_name_the_key(table, expected):
    with pytest.raises(ConfigError, match=expected):
        parse_section(ControlsConfig, table, "controls", "agent.toml")


def test_optional_pins_can_be_switched_off():
    cfg = parse_section(ControlsConfig, {"led_green_pin": 0, "buzzer_pin": 0, "reminder_seconds": 0}, "controls")
    assert (cfg.led_green_pin, cfg.buzzer_pin, cfg.reminder_seconds) == (0, 0, 0.0)


def test_a_pin_the_board_does_not_have_names_the_key(mock_factory):
    with pytest.raises(ConfigError, match=r"controls\.button_pin = 28: this board has no GPIO28"):
        ControlsThread(lambda t: None, button_pin=28)


def test_a_pin_already_claimed_names_the_key(mock_factory):
    first = ControlsThread(lambda t: None, button_pin=17)
    try:
        cfg = ControlsConfig(led_red_pin=17, button_pin=5)  # valid config, but the pin is held elsewhere
        with pytest.raises(ControlsError, match=r"controls\.led_red_pin = 17: GPIO17 is already in use"):
            IndicatorThread.from_config(cfg, lambda: None)
    finally:
        first.stop()


def test_an_unknown_driver_that_bypassed_the_loader_still_names_the_key():
    with pytest.raises(ConfigError, match=re.escape("display.driver = 'ssd1331' is not one of")):
        open_device(DisplayConfig(driver="ssd1331"))


def test_auto_pin_factory_uses_an_installed_factory_and_mocks_off_the_pi(mock_factory, monkeypatch):
    assert pin_factory("auto") is None  # the test's MockFactory is already installed: use it
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    monkeypatch.setattr(Device, "pin_factory", None)
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    monkeypatch.setattr("ui.gpio.on_raspberry_pi", lambda: False)
    assert isinstance(pin_factory("auto"), MockFactory)
    assert isinstance(pin_factory("mock"), MockFactory)
