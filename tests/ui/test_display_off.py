"""`bodycam display-off` (the agent unit's ExecStopPost): a panel left showing the last frame of a crashed
agent is cleared and switched off, through the real luma driver, as far as an I2C bus can tell."""

from __future__ import annotations

import pytest

from agent.cli import main
from agent.instancelock import InstanceLock

FRAME_BYTES = 128 * 64 // 8


class SSD1306Panel:
    """What an SSD1306 on the I2C bus keeps: power on or off, and its frame memory (horizontal addressing).

    Stands in for smbus2.SMBus, so the command opens the bus exactly as on a Pi. It starts as a crashed
    agent leaves it: switched on, showing a full frame.
    """

    def __init__(self):
        self.on = True
        self.ram = bytearray(b"\xff" * FRAME_BYTES)
        self._pointer = 0
        self.transfers = 0
        self.closed = False

    def __call__(self, port):  # smbus2.SMBus(port)
        return self

    def write_i2c_block_data(self, address, register, data):
        self._transfer(register, list(data))

    def i2c_rdwr(self, *messages):
        for message in messages:
            raw = bytes(message)
            self._transfer(raw[0], list(raw[1:]))

    def _transfer(self, register, data):
        self.transfers += 1
        if register == 0x40:  # data: frame memory, written on from the address window's start
            for byte in data:
                self.ram[self._pointer % FRAME_BYTES] = byte
                self._pointer += 1
        elif data in ([0xAE], [0xAF]):  # DISPLAYOFF / DISPLAYON
            self.on = data == [0xAF]
        elif data and data[0] == 0x21:  # COLUMNADDR: a new frame starts at the window's first byte
            self._pointer = 0

    def close(self):
        self.closed = True


@pytest.fixture
def panel(monkeypatch):
    import smbus2

    fake = SSD1306Panel()
    monkeypatch.setattr(smbus2, "SMBus", fake)
    return fake


def agent_toml(tmp_path, driver="ssd1306", port=1):
    path = tmp_path / "agent.toml"
    path.write_text(f'[display]\ndriver = "{driver}"\ni2c_port = {port}\n\n'
                    f'[evidence]\nstate_dir = "{tmp_path / "state"}"\n')
    return path


def test_display_off_clears_and_switches_off_a_panel_left_showing_the_last_frame(panel, tmp_path):
    assert main(["display-off", "--config", str(agent_toml(tmp_path))]) == 0
    assert not panel.on  # powered down ...
    assert panel.ram == bytes(FRAME_BYTES)  # ... and blank, should anything switch it on again
    assert panel.closed


def test_display_off_leaves_the_panel_to_a_running_agent(panel, tmp_path, capsys):
    with InstanceLock.acquire(tmp_path / "state"):  # an agent runs on this state directory
        assert main(["display-off", "--config", str(agent_toml(tmp_path))]) == 1
    assert panel.transfers == 0 and panel.on
    assert "an agent is running" in capsys.readouterr().err


def test_display_off_without_a_panel_is_a_clear_error(tmp_path, capsys):
    assert main(["display-off", "--config", str(agent_toml(tmp_path, port=9))]) == 2
    assert "I2C bus 9 at 0x3C does not exist" in capsys.readouterr().err
    assert main(["display-off", "--config", str(agent_toml(tmp_path, driver="dummy"))]) == 0  # nothing to do
