"""LED and haptics on mock pins, stepped with a fake clock: patterns, reminder, alerts, and a red that never blinks."""

from __future__ import annotations

import time

import pytest

from ui.indicators import RECORDING_BLIP_EVERY_S, REMINDER_PATTERN, START_PATTERN, STOP_PATTERN, IndicatorThread
from ui.settings import ControlsConfig
from ui.state import OfficerState, OfficerStatus

RED, GREEN, BUZZER = 23, 24, 25


class Rig:
    def __init__(self, factory, **cfg):
        self.state = OfficerState.STANDBY
        self.alert = False
        self.ind = IndicatorThread.from_config(ControlsConfig(**cfg), lambda: OfficerStatus(self.state),
                                               alerting=lambda: self.alert)
        self.pins = {name: factory.pin(n) for name, n in (("red", RED), ("green", GREEN), ("buzzer", BUZZER))}
        self.buzz_log: list[tuple[float, bool]] = []

    def step(self, start, end, dt=0.01):
        """Run the thread's update from ``start`` to ``end``, logging buzzer switches with their times."""
        t = start
        while t <= end + 1e-9:
            before = self.pins["buzzer"].state
            self.ind.update(t)
            if self.pins["buzzer"].state != before:
                self.buzz_log.append((round(t, 2), bool(self.pins["buzzer"].state)))
            t += dt

    def led(self):
        return bool(self.pins["red"].state), bool(self.pins["green"].state)


def pulses(log):
    """Buzzer on-times as (start, length) pairs."""
    ons = [t for t, on in log if on]
    offs = [t for t, on in log if not on]
    return [(a, round(b - a, 2)) for a, b in zip(ons, offs, strict=False)]


@pytest.fixture
def rig(mock_factory):
    rig = Rig(mock_factory)
    yield rig
    rig.ind.stop()


def test_green_in_standby_and_mirror_red_while_recording(rig):
    rig.step(0, 0.1)
    assert rig.led() == (False, True)
    rig.state = OfficerState.MIRROR
    rig.step(0.2, 0.3)
    assert rig.led() == (False, True)
    rig.state = OfficerState.RECORDING
    rig.step(0.4, 0.5)
    assert rig.led() == (True, False)
    rig.state = OfficerState.FINISHING
    rig.step(0.6, 0.7)
    assert rig.led() == (True, False)
    rig.state = OfficerState.STANDBY
    rig.step(0.8, 0.9)
    assert rig.led() == (False, True)


def test_start_and_stop_patterns_and_the_two_minute_reminder(rig):
    rig.step(0, 1)
    assert rig.buzz_log == []  # the first state after start-up is not a change
    rig.state = OfficerState.RECORDING
    rig.step(1.01, 250)
    rig.state = OfficerState.FINISHING
    rig.step(250.01, 252)
    got = pulses(rig.buzz_log)
    start = [(1.01, START_PATTERN[0][0]), (round(1.01 + sum(START_PATTERN[0]), 2), START_PATTERN[1][0])]
    reminders = [(round(1.01 + 120 * k, 2), REMINDER_PATTERN[0][0]) for k in (1, 2)]
    stop = [(250.01, STOP_PATTERN[0][0])]
    flat = [v for pulse in got for v in pulse]
    assert flat == pytest.approx([v for pulse in start + reminders + stop for v in pulse], abs=0.015)


def test_reminder_can_be_switched_off(mock_factory):
    rig = Rig(mock_factory, reminder_seconds=0)
    try:
        rig.step(0, 0.1)
        rig.state = OfficerState.RECORDING
        rig.step(0.11, 400, dt=0.05)
        assert len(pulses(rig.buzz_log)) == 2  # the start pattern only
    finally:
        rig.ind.stop()


def test_an_alert_blinks_green_when_idle(rig):
    rig.alert = True
    seen = set()
    for i in range(40):
        rig.ind.update(i * 0.05)
        seen.add(rig.led())
    assert seen == {(False, True), (False, False)}


def test_an_alert_never_interrupts_the_red_while_recording(rig):
    rig.step(0, 0.1)
    rig.state, rig.alert = OfficerState.RECORDING, True
    reds, greens = set(), 0
    t = 0.2
    while t < 0.2 + 3 * RECORDING_BLIP_EVERY_S:
        rig.ind.update(t)
        red, green = rig.led()
        reds.add(red)
        greens += green
        t += 0.01
    assert reds == {True}
    assert 0 < greens < 0.2 * 3 * RECORDING_BLIP_EVERY_S / 0.01  # short green blips, not a colour change


def test_a_failing_status_source_keeps_the_last_state(mock_factory, caplog):
    rig = Rig(mock_factory)
    try:
        rig.state = OfficerState.RECORDING
        rig.step(0, 0.1)
        rig.ind._status = lambda: 1 / 0
        rig.step(0.2, 0.5)
        assert rig.led() == (True, False)
        assert sum("indicator source 'status' failed" in r.message for r in caplog.records) == 1
    finally:
        rig.ind.stop()


def test_the_thread_applies_a_state_change_within_a_tick(rig):
    rig.ind.start()
    time.sleep(0.05)
    assert rig.led() == (False, True)
    rig.state = OfficerState.RECORDING
    rig.ind.wake()
    time.sleep(0.05)
    assert rig.led() == (True, False)
    rig.ind.stop()
    assert not rig.ind.is_alive()
    assert rig.ind.red.closed  # stop() gave the pins back
