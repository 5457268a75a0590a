"""The display thread and device factory: fixed rate, wake-ups, and faults that never become crashes."""

from __future__ import annotations

import errno
import threading
import time

import pytest
from luma.core.device import dummy
from PIL import Image

from ui.display import DisplayError, DisplayThread, build_display_thread, device_error, open_device, switch_off, wake_on_state_change
from ui.screens import render
from ui.settings import DisplayConfig
from ui.state import OfficerState, OfficerStatus
from ui.view import OfficerView
from ui_fakes import FakeBus, wait_for

NOW = 1_700_000_000.0


def views(state=OfficerState.STANDBY):
    return lambda: OfficerView(state, now=time.time(), clock="09:41")


def test_pushes_at_the_configured_rate_and_skips_unchanged_frames():
    cfg = DisplayConfig(fps=20.0)
    thread = build_display_thread(cfg, views())
    thread.start()
    time.sleep(0.5)
    thread.stop()
    stats = thread.stats()
    assert 7 <= stats.frames_pushed + stats.frames_unchanged <= 12
    assert stats.frames_pushed >= 1 and stats.frames_unchanged >= 5  # the standby screen does not change
    assert stats.fault is None and not thread.is_alive()


def test_wake_renders_at_once_instead_of_at_the_next_tick():
    pushed = threading.Event()
    state = [OfficerState.STANDBY]

    class Device:
        def display(self, image):
            if state[0] is OfficerState.RECORDING:
                pushed.set()

        def cleanup(self):
            pass

    thread = DisplayThread(Device, lambda: OfficerView(state[0], now=NOW, clock="09:41"), render, fps=1.0)
    thread.start()
    try:
        time.sleep(0.05)
        state[0] = OfficerState.RECORDING
        on_status = wake_on_state_change(thread)
        t0 = time.monotonic()
        on_status(OfficerStatus(OfficerState.RECORDING))
        assert pushed.wait(1.0)
        assert time.monotonic() - t0 < 0.1  # at 1 fps the next tick would be up to a second away
    finally:
        thread.stop()


def test_ssd1306_over_i2c_gets_every_frame():
    bus = FakeBus()
    device = open_device(DisplayConfig(driver="ssd1306", contrast=200), bus=bus)
    assert [0x81, 200] in bus.commands  # contrast from config
    bus.written = 0
    device.display(render(views(OfficerState.RECORDING)()))
    assert bus.written == 128 * 64 // 8


@pytest.mark.parametrize("driver", ["sh1106", "ssd1309"])
def test_the_other_oled_drivers_open(driver):
    device = open_device(DisplayConfig(driver=driver, rotation=2), bus=FakeBus())
    device.display(Image.new("1", (128, 64)))
    assert device.size == (128, 64)


def test_a_display_that_does_not_answer_is_a_sentence():
    bus = FakeBus()
    bus.unplug()
    with pytest.raises(DisplayError, match=r"nothing answers on I2C bus 1 at 0x3C; check the cable"):
        open_device(DisplayConfig(driver="ssd1306"), bus=bus)


def test_a_missing_i2c_bus_is_a_sentence():
    with pytest.raises(DisplayError, match=r"I2C bus 9 at 0x3C does not exist; enable I2C"):
        open_device(DisplayConfig(driver="ssd1306", i2c_port=9))


def test_permission_denied_is_a_sentence():
    error = device_error(PermissionError(errno.EACCES, "Permission denied"), "I2C bus 1 at 0x3C")
    assert "add the agent's user to the 'i2c' group" in str(error)


def test_unplugged_display_becomes_a_fault_and_comes_back_when_replugged():
    bus = FakeBus()
    changes = []
    cfg = DisplayConfig(driver="ssd1306", fps=50.0)
    thread = DisplayThread(lambda: open_device(cfg, bus=bus), views(OfficerState.RECORDING), render, fps=50.0,
                           on_fault=changes.append, retry_first_s=0.05, retry_max_s=0.1, where="I2C bus 1 at 0x3C")
    thread.start()
    try:
        assert wait_for(lambda: thread.frames_pushed >= 3)
        bus.unplug()
        assert wait_for(lambda: thread.fault is not None)
        fault = thread.fault
        assert "nothing answers on I2C bus 1 at 0x3C" in str(fault)
        assert wait_for(lambda: thread.fault.failures >= 3)  # it keeps retrying, with a pause
        assert thread.is_alive()
        pushed = thread.frames_pushed
        bus.replug()
        assert wait_for(lambda: thread.fault is None and thread.frames_pushed > pushed)
        assert [c is None for c in changes] == [False, True]  # one "failed", one "back"
        assert changes[0].since == fault.since
    finally:
        thread.stop()
    assert [0xAE] in bus.commands[-3:]  # stop() switched the display off (an injected bus stays open)


def test_a_rendering_bug_is_a_fault_not_a_crash(caplog):
    calls = []

    def broken(view):
        calls.append(view)
        raise ZeroDivisionError("bug")

    thread = DisplayThread(lambda: open_device(DisplayConfig()), views(), broken, fps=50.0)
    thread.start()
    try:
        assert wait_for(lambda: len(calls) >= 5)
        assert thread.is_alive() and "rendering the display failed" in str(thread.fault)
        assert sum("rendering the display failed" in r.message for r in caplog.records) == 1  # logged once
    finally:
        thread.stop()


def test_a_device_that_cannot_open_at_all_is_retried_with_a_growing_pause():
    attempts = []

    def never():
        attempts.append(time.monotonic())
        raise DisplayError("front display: nothing answers")

    thread = DisplayThread(never, views(), render, fps=50.0, retry_first_s=0.02, retry_max_s=0.16)
    thread.start()
    time.sleep(0.6)
    thread.stop()
    gaps = [b - a for a, b in zip(attempts, attempts[1:], strict=False)]
    assert 3 <= len(attempts) <= 8
    assert gaps[-1] > gaps[0] * 3
    assert thread.fault.failures == len(attempts)


@pytest.mark.parametrize("suffix", [".gif", ".png"])
def test_emulator_writes_png_frames_or_an_animated_gif(tmp_path, suffix):
    pytest.importorskip("pygame")
    cfg = DisplayConfig(driver="emulator", emulator_path=str(tmp_path / f"display{suffix}"))
    device = open_device(cfg)
    for state in (OfficerState.STANDBY, OfficerState.RECORDING):
        device.display(render(views(state)()))
    device.cleanup()
    if suffix == ".gif":
        with Image.open(tmp_path / "display.gif") as gif:
            assert gif.n_frames == 2 and gif.size == (512, 256)
    else:
        assert sorted(p.name for p in tmp_path.iterdir()) == ["display_000001.png", "display_000002.png"]


def test_switch_off_blanks_a_panel_left_showing_a_stale_frame():
    bus = FakeBus()
    switch_off(DisplayConfig(driver="ssd1306"), bus=bus)
    assert [0xAE] in bus.commands[-2:]  # DISPLAYOFF, then a cleared frame
    switch_off(DisplayConfig())  # the dummy has nothing to switch off


def test_the_rate_the_bus_carries_is_measured_and_a_shortfall_logged(caplog):
    """A slow bus: the thread only gets to render every 0.2 s of a fake clock while 15 frames/s are wanted."""
    now = [0.0]
    frames = iter(range(10**6))
    thread = DisplayThread(lambda: dummy(width=128, height=64, mode="1"),
                           lambda: OfficerView(OfficerState.MIRROR, now=NOW + next(frames), clock="09:41"),
                           render, fps=15.0, clock=lambda: now[0])
    with caplog.at_level("WARNING", logger="ui.display"):
        for _ in range(60):  # 12 s of the fake clock
            thread._frame()
            now[0] += 0.2
    assert thread.stats().fps == pytest.approx(5.0)
    assert "keeps up 5.0 frames/s of the 15 configured" in caplog.text
