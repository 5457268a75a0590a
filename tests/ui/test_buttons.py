"""The controls thread on gpiozero mock pins: gestures become the right requests, at the right time.

Times are scaled down (hold 0.15 s, long hold 0.45 s) so the suite stays fast; the real 1 s / 3 s
defaults are exercised end to end in test_officer_flow.py.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from ui.controls import ControlsThread, Request
from ui.settings import ControlsConfig
from ui.state import OfficerState, OfficerStatus
from ui_fakes import wait_for

HOLD, LONG = 0.15, 0.45


class Recorder:
    """Collects requests and plays the recorder's state for the press-start check."""

    def __init__(self):
        self.requests, self.gestures = [], []
        self.state = OfficerState.STANDBY
        self.event = threading.Event()

    def status(self):
        return OfficerStatus(self.state)

    def on_request(self, request):
        self.requests.append(request)
        self.event.set()

    def actions(self):
        return [(r.action, r.origin) for r in self.requests]


@pytest.fixture
def rig(mock_factory):
    rec = Recorder()
    controls = ControlsThread(rec.on_request, status=rec.status, on_gesture=rec.gestures.append, button_pin=17,
                              hold_s=HOLD, long_hold_s=LONG, debounce_s=0.01, trigger_pin=27)
    controls.start()
    pins = SimpleNamespace(button=mock_factory.pin(17), input=mock_factory.pin(27))
    yield rec, pins, controls
    controls.stop()
    assert not controls.is_alive() and controls.fault is None


def press(pin, seconds):
    pin.drive_low()  # the button pulls the line to GND
    time.sleep(seconds)
    pin.drive_high()


def settle(rec, gestures):
    """Wait until the controls thread has reported ``gestures`` (and a little longer for stray ones)."""
    assert wait_for(lambda: rec.gestures[-len(gestures):] == gestures, 2.0), rec.gestures
    time.sleep(0.05)


def test_short_press_toggles_the_mirror(rig):
    rec, pins, _ = rig
    press(pins.button, 0.05)
    settle(rec, ["press"])
    assert rec.actions() == [(Request.MIRROR_TOGGLE, "button")]
    assert rec.gestures == ["press"]


def test_hold_starts_while_the_button_is_still_down(rig):
    rec, pins, _ = rig
    t0 = time.monotonic()  # before the edge: drive_low returns after the pin's callbacks ran, a few ms later
    pins.button.drive_low()
    assert rec.event.wait(2.0)
    recognised = time.monotonic() - t0
    assert rec.actions() == [(Request.START, "button")]
    assert HOLD <= recognised < HOLD + 0.25
    pins.button.drive_high()
    settle(rec, ["hold", "release"])
    assert rec.actions() == [(Request.START, "button")]  # releasing adds nothing
    assert rec.gestures == ["hold", "release"]


def test_holding_on_after_a_start_never_stops_it(rig):
    rec, pins, _ = rig
    press(pins.button, LONG + 0.1)
    settle(rec, ["hold", "long_hold", "release"])
    assert rec.actions() == [(Request.START, "button")]
    assert rec.gestures == ["hold", "long_hold", "release"]


def test_long_hold_during_a_recording_stops_it(rig):
    rec, pins, _ = rig
    rec.state = OfficerState.RECORDING
    press(pins.button, LONG + 0.1)
    settle(rec, ["hold", "long_hold", "release"])
    assert rec.actions() == [(Request.STOP, "button")]


def test_a_shorter_hold_during_a_recording_does_nothing(rig):
    rec, pins, _ = rig
    rec.state = OfficerState.RECORDING
    press(pins.button, (HOLD + LONG) / 2)
    settle(rec, ["hold", "release"])
    assert rec.actions() == []
    assert rec.gestures == ["hold", "release"]


def test_bouncing_contacts_give_one_press(rig):
    rec, pins, _ = rig
    for _ in range(4):
        pins.button.drive_low()
        pins.button.drive_high()
    pins.button.drive_low()
    time.sleep(0.05)
    pins.button.drive_high()
    pins.button.drive_low()
    pins.button.drive_high()
    settle(rec, ["press"])
    assert rec.actions() == [(Request.MIRROR_TOGGLE, "button")]


def test_trigger_input_starts_and_never_stops(rig):
    rec, pins, _ = rig
    pins.input.drive_low()
    settle(rec, ["input"])
    assert rec.actions() == [(Request.START, "input")]
    rec.state = OfficerState.RECORDING
    pins.input.drive_high()
    time.sleep(0.05)
    pins.input.drive_low()
    settle(rec, ["input", "input"])
    assert rec.actions() == [(Request.START, "input"), (Request.START, "input")]  # START is idempotent
    assert rec.gestures == ["input", "input"]


def test_a_button_held_at_start_up_is_ignored_until_released(mock_factory):
    mock_factory.pin(17).drive_low()  # stuck (or held while booting)
    rec = Recorder()
    controls = ControlsThread(rec.on_request, status=rec.status, button_pin=17, hold_s=HOLD, long_hold_s=LONG,
                              debounce_s=0.01)
    controls.start()
    try:
        time.sleep(LONG + 0.1)
        assert rec.actions() == []
        mock_factory.pin(17).drive_high()
        time.sleep(0.05)
        press(mock_factory.pin(17), 0.05)
        assert wait_for(lambda: rec.requests, 2.0)
        time.sleep(0.05)
        assert rec.actions() == [(Request.MIRROR_TOGGLE, "button")]
    finally:
        controls.stop()


def test_from_config_claims_the_configured_pins(mock_factory):
    cfg = ControlsConfig(button_pin=5, trigger_pin=6)
    controls = ControlsThread.from_config(cfg, lambda t: None)
    try:
        assert mock_factory.pin(5).pull == "up" and mock_factory.pin(6).pull == "up"
    finally:
        controls.stop()
    ControlsThread.from_config(cfg, lambda t: None).stop()  # stop() gave the pins back
