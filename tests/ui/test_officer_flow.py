"""End to end on mock pins: button → recorder → LED, haptics and the display, with the real 1 s / 3 s timing.

A real RecorderThread is fed by the synthetic camera in real time; the controls, indicator and
display threads are wired the way the runtime wires them (status snapshots out, triggers in).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from luma.core.device import dummy

from agent.alerts import derive_alerts
from agent.officer import alert_codes, officer_status, trigger_for
from agent.pipeline import RecorderThread
from agent.recorder import Action, Recorder, State, Trigger
from camera.ring import PreEventRing
from ui.controls import ControlsThread
from ui.display import DisplayThread, open_device, wake_on_state_change
from ui.indicators import IndicatorThread
from ui.screens import ALERT, render, screen_for
from ui.settings import ControlsConfig, DisplayConfig
from ui.state import OfficerState
from ui.view import OfficerView, ViewBuilder
from ui_fakes import FakeBus, wait_for

BAND = 22  # rows of the recording band at 128x64
REFERENCE_BANDS = {render(OfficerView(OfficerState.RECORDING, now=t, clock="00:00")).crop((0, 0, 128, BAND)).tobytes()
                   for t in (0.0, 0.5)}  # dot on, dot off


def has_recording_mark(image) -> bool:
    return image.convert("1").crop((0, 0, 128, BAND)).tobytes() in REFERENCE_BANDS


class Pushes:
    """A luma dummy device that remembers when each frame arrived."""

    def __init__(self):
        self.device = dummy(width=128, height=64, mode="1")
        self.frames: list[tuple[float, object]] = []

    def display(self, image):
        self.device.display(image)
        self.frames.append((time.monotonic(), self.device.image))

    def cleanup(self):
        pass


class Officer:
    """The device's officer-facing parts around a real recorder."""

    def __init__(self, source, display_open, alerting=None):
        self.source = source
        self.segments = []
        self.status_times: list[tuple[float, State]] = []
        self.gestures: list[tuple[float, str]] = []
        recorder = Recorder(source.info, PreEventRing(1.0, 16 << 20), 2.0, self.segments.append,
                            request_keyframe=source.request_keyframe)
        self.builder = ViewBuilder(lambda: officer_status(self.recorder.status), preview=source.preview,
                                   alerts=lambda: alert_codes(self.alerts()))
        self.display = DisplayThread(display_open, self.builder, render, fps=10.0, retry_first_s=0.1,
                                     retry_max_s=0.2)
        self.indicators = IndicatorThread.from_config(
            ControlsConfig(), lambda: officer_status(self.recorder.status),
            alerting=alerting or (lambda: self.display.fault is not None))
        wake = wake_on_state_change(self.display, self.indicators)

        def on_status(status):
            self.status_times.append((time.monotonic(), status.state))
            wake(officer_status(status))

        self.recorder = RecorderThread(recorder, queue_frames=90, on_status=on_status)
        self.controls = ControlsThread.from_config(
            ControlsConfig(), lambda request: self.recorder.trigger(trigger_for(request)),
            status=lambda: officer_status(self.recorder.status),
            on_gesture=lambda name: self.gestures.append((time.monotonic(), name)))

    def alerts(self):
        fault = self.display.fault
        return derive_alerts({}, display_fault=str(fault) if fault else None)

    def start(self):
        self.recorder.start()
        self.source.start(self.recorder.offer)
        for thread in (self.display, self.indicators, self.controls):
            thread.start()
        assert wait_for(lambda: self.recorder.status.frames_seen > 10)

    def stop(self):
        for thread in (self.controls, self.indicators, self.display):
            thread.stop()
        self.source.stop()
        self.recorder.stop()
        for thread in (self.controls, self.indicators, self.display, self.recorder):
            assert not thread.is_alive()
        assert self.display.fault is None and self.controls.fault is None and self.indicators.fault is None

    @property
    def state(self):
        return self.recorder.status.state

    def state_since(self, state) -> float:
        return next(t for t, s in reversed(self.status_times) if s is state)


@pytest.fixture
def pins(mock_factory):
    return {name: mock_factory.pin(n) for name, n in
            (("button", 17), ("red", 23), ("green", 24), ("buzzer", 25))}


def hold(pin, seconds):
    pin.drive_low()
    time.sleep(seconds)
    pin.drive_high()


def led(pins):
    return bool(pins["red"].state), bool(pins["green"].state)


def test_press_hold_and_long_hold_drive_the_recorder_led_and_display(pins, small_source):
    pushes = Pushes()
    officer = Officer(small_source(realtime=True, fps=30.0, gop_frames=30), lambda: pushes)
    officer.start()
    try:
        assert officer.state is State.STANDBY and led(pins) == (False, True)

        # a short press: the mirror comes on, nothing is recorded
        hold(pins["button"], 0.1)
        assert wait_for(lambda: officer.state is State.MIRROR, 1.0)
        assert led(pins) == (False, True) and not officer.segments

        # hold: recording starts once the hold is recognised, the LED turns red, the next frame shows the mark
        pins["button"].drive_low()
        assert wait_for(lambda: officer.state is State.RECORDING, 2.0)
        hold_seen = next(t for t, name in officer.gestures if name == "hold")
        assert wait_for(lambda: led(pins) == (True, False), 0.5)
        published = officer.state_since(State.RECORDING)
        assert wait_for(lambda: any(has_recording_mark(img) for t, img in pushes.frames if t > published), 0.3)
        first_mark = next(t for t, img in pushes.frames if t > published and has_recording_mark(img))
        assert first_mark - hold_seen < 0.3  # typically 50 ms; bench/bench_ui.py measures it properly
        time.sleep(0.5)
        pins["button"].drive_high()  # released after 1.5 s: the press that started it cannot stop it
        time.sleep(0.3)  # (a new press right away would be contact bounce of this one)

        # a 2-second hold during the recording does not stop it
        hold(pins["button"], 2.0)
        time.sleep(0.3)
        assert officer.state is State.RECORDING and led(pins) == (True, False)
        assert [name for t, name in officer.gestures][-2:] == ["hold", "release"]
        after = [img for t, img in pushes.frames if t > first_mark]
        assert after and all(has_recording_mark(img) for img in after)

        # a long hold stops it: back to the mirror it started from
        pins["button"].drive_low()
        assert wait_for(lambda: officer.state is State.MIRROR, 3.5)
        pins["button"].drive_high()
        assert wait_for(lambda: led(pins) == (False, True), 0.5)
        assert officer.segments and officer.segments[-1].final
        assert wait_for(lambda: len(officer.gestures) == 8, 0.5)
        assert [a for t, a in officer.gestures] == ["press", "hold", "release", "hold", "release",
                                                    "hold", "long_hold", "release"]
        assert sum(1 for s in pins["buzzer"].states if s.state) == 3  # two pulses at start, one at stop
    finally:
        officer.stop()


def test_display_unplugged_mid_recording(pins, small_source):
    bus = FakeBus()
    officer = Officer(small_source(realtime=True, fps=30.0, gop_frames=30),
                      lambda: open_device(DisplayConfig(driver="ssd1306"), bus=bus))
    officer.start()
    try:
        officer.recorder.trigger(Trigger(Action.START, "test"))
        assert wait_for(lambda: officer.state is State.RECORDING and led(pins) == (True, False))
        assert wait_for(lambda: officer.display.frames_pushed > 3)
        pins["red"].clear_states()
        pins["green"].clear_states()

        bus.unplug()
        assert wait_for(lambda: officer.display.fault is not None, 1.0)
        seen = officer.recorder.status.frames_seen
        time.sleep(2.5)

        # the recording went on …
        status = officer.recorder.status
        assert status.state is State.RECORDING and status.frames_seen - seen >= 60 and status.frames_lost == 0
        # … the LED stayed red the whole time, with green blips for the alert …
        assert [s.state for s in pins["red"].states] == [True]
        assert any(s.state for s in pins["green"].states)
        # … and the alert is raised where telemetry and the display read it
        assert "display_fault" in [a.code for a in officer.alerts()]
        assert "nothing answers on I2C bus 1 at 0x3C" in str(officer.display.fault)
        view = officer.builder()
        assert view.alerts == ("display_fault",) and screen_for(view) == ALERT
        assert officer.display.is_alive()

        bus.replug()
        assert wait_for(lambda: officer.display.fault is None, 1.0)
        officer.recorder.trigger(Trigger(Action.STOP, "test"))
        assert wait_for(lambda: officer.state is State.STANDBY)
        assert officer.segments and officer.segments[-1].final
        recorded = sum(s.frame_count for s in officer.segments)
        assert recorded >= 90 and all(np.all(s.dropped_frames == 0) for s in officer.segments)
    finally:
        officer.stop()
