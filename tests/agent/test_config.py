import dataclasses
import re

import pytest

from agent import config
from base.errors import ConfigError


def write(tmp_path, text):
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, expected", [
    ("[recording]\nfoo = 1\n", r"agent\.toml: recording\.foo: unknown key"),
    ("[recordings]\n", r"agent\.toml: unknown section \[recordings\]"),
    ("[recording]\npre_event_seconds = 500\n", r"agent\.toml: recording\.pre_event_seconds = 500\.0 is out of range"),
    ("[recording]\npre_event_seconds = -1\n", r"recording\.pre_event_seconds = -1\.0 is out of range"),
    ("[camera]\nfps = -5\n", r"agent\.toml: camera\.fps = -5\.0 is out of range"),
    ("[camera]\nfps = \"fast\"\n", r"camera\.fps must be a number, not string 'fast'"),
    ("[camera]\nwidth = 1919\n", r"camera\.width = 1919 must be even"),
    ("[camera]\nwidth = 1920.0\n", r"camera\.width must be a whole number"),
    ("[camera]\nbackend = \"webcam\"\n", r"camera\.backend = 'webcam' is not one of"),
    ("[camera]\nsynthetic_realtime = 1\n", r"camera\.synthetic_realtime must be true or false"),
    ("[recording]\nsegment_seconds = 1\n", r"recording\.segment_seconds = 1\.0 is out of range \(allowed 2\.0\.\.60\.0\)"),
    ("[device]\nid = \"Bad/ID\"\n", r"device\.id = 'Bad/ID' must be 1-64 characters"),
    ("camera = 3\n", r"'camera' must be a table"),
    ("[camera\n", r"agent\.toml: not valid TOML"),
])
def test_bad_config_is_rejected_naming_file_and_key(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=re.compile(re.escape(str(tmp_path)) + ".*" + expected)
                       if expected.startswith("agent") else expected):
        config.load(path)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        config.load(tmp_path / "nope.toml")


def test_partial_file_keeps_defaults_and_values_are_frozen(tmp_path):
    cfg = config.load(write(tmp_path, "[recording]\npre_event_seconds = 0\n"))
    assert cfg.recording.pre_event_seconds == 0.0
    assert cfg.camera == config.CameraConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.recording.pre_event_seconds = 10


def test_example_file_documents_every_key_with_its_default():
    text = config.example_path().read_text()
    assert config.loads(text) == config.Config()
    for section, cls in config.sections():
        assert f"[{section}]" in text
        for field in dataclasses.fields(cls):
            assert re.search(rf"^{field.name} = ", text, re.M), f"{section}.{field.name} missing from the example"


def test_replace_validates_like_the_file():
    cfg = config.Config()
    assert config.replace(cfg, "recording", pre_event_seconds=5).recording.pre_event_seconds == 5.0
    with pytest.raises(ConfigError, match="pre_event_seconds = 121"):
        config.replace(cfg, "recording", pre_event_seconds=121)


def test_gop_defaults_to_one_second():
    assert config.CameraConfig(fps=25.0).keyframe_interval == 25
    assert config.CameraConfig(fps=30.0, gop_frames=15).keyframe_interval == 15


@pytest.mark.parametrize("controls, expected", [
    ("led_green_pin = 22", r"agent\.toml: controls\.led_green_pin = 22 is already used by display\.dc_pin"),
    ("button_pin = 18", r"controls\.button_pin = 18 is already used by display\.backlight_pin"),
    ("trigger_pin = 10", r"controls\.trigger_pin = 10 is already used by the display's SPI0 bus"),
])
def test_a_control_on_a_pin_of_the_spi_display_is_refused(controls, expected):
    text = f'[display]\ndriver = "st7789"\nwidth = 320\nheight = 240\n[controls]\n{controls}\n'
    with pytest.raises(ConfigError, match=expected):
        config.loads(text, "agent.toml")
    config.loads(text.replace("st7789", "dummy"), "agent.toml")  # no SPI display: the pins are free


def test_sound_is_off_by_default_and_switched_on_by_the_config(tmp_path):
    assert config.Config().audio.enabled is False
    audio = config.loads('[audio]\nenabled = true\nbitrate = 32000\ndevice = "hw:1,0"\n').audio
    assert (audio.enabled, audio.bitrate, audio.device) == (True, 32000, "hw:1,0")
    with pytest.raises(ConfigError, match=r"audio\.gain_db .*alsamixer"):
        config.loads("[audio]\ngain_db = 6\n")
    with pytest.raises(ConfigError, match="audio.codec"):
        config.loads('[audio]\ncodec = "mp3"\n')
