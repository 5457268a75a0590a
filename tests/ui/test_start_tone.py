"""The start tone for the person in front, on gpiozero's mock pins: distinct start and stop patterns, none
when the policy says off, and never the officer's vibration pattern."""

from __future__ import annotations

import pytest

from base.errors import ConfigError
from ui.indicators import START_PATTERN, STOP_PATTERN, TONE_START_PATTERN, TONE_STOP_PATTERN, IndicatorThread
from ui.settings import ControlsConfig, SignalsConfig, signal_problems
from ui.state import OfficerState, OfficerStatus

BUZZER, TONE = 25, 26


class Rig:
    """The indicator thread on mock pins, stepped with a fake clock; every pin switch logged with its time."""

    def __init__(self, factory, start_tone: bool):
        self.state = OfficerState.STANDBY
        self.ind = IndicatorThread.from_config(ControlsConfig(tone_pin=TONE), lambda: OfficerStatus(self.state),
                                               factory=factory, start_tone=start_tone)
        self.pins = {"buzzer": factory.pin(BUZZER), "tone": factory.pin(TONE)}
        self.log = {name: [] for name in self.pins}

    def step(self, start, end, dt=0.01):
        for tick in range(round(start / dt), round(end / dt) + 1):  # whole ticks: no drift from adding floats
            t = tick * dt
            before = {name: pin.state for name, pin in self.pins.items()}
            self.ind.update(t)
            for name, pin in self.pins.items():
                if pin.state != before[name]:
                    self.log[name].append((round(t, 2), bool(pin.state)))

    def pulses(self, name):
        """(start, length) of each pulse on ``name``, as the fake clock saw it."""
        ons = [t for t, on in self.log[name] if on]
        offs = [t for t, on in self.log[name] if not on]
        return [(a, round(b - a, 2)) for a, b in zip(ons, offs, strict=True)]


def expected(pattern, at):
    out, t = [], at
    for on_s, off_s in pattern:
        out.append((round(t, 2), on_s))
        t += on_s + off_s
    return out


@pytest.fixture
def rig(mock_factory, request):
    rig = Rig(mock_factory, start_tone=request.param)
    yield rig
    rig.ind.stop()


@pytest.mark.parametrize("rig", [True], indirect=True)
def test_start_and_end_of_a_recording_sound_two_distinct_tones(rig):
    rig.step(0, 1)
    rig.state = OfficerState.RECORDING
    rig.step(1.01, 5)
    rig.state = OfficerState.FINISHING  # the officer stopped; the post-event time still records
    rig.step(5.01, 7)
    rig.state = OfficerState.RECORDING  # re-triggered: the recording never stopped, no tone
    rig.step(7.01, 8)
    rig.state = OfficerState.FINISHING
    rig.step(8.01, 9)
    rig.state = OfficerState.STANDBY  # now nothing is recorded any more
    rig.step(9.01, 11)
    assert rig.pulses("tone") == expected(TONE_START_PATTERN, 1.01) + expected(TONE_STOP_PATTERN, 9.01)
    # gpiozero's own record of the pin agrees: 3 beeps, then 2, nothing else
    history = [s.state for s in rig.pins["tone"].states]
    assert history == [False] + [True, False] * (len(TONE_START_PATTERN) + len(TONE_STOP_PATTERN))
    assert [p[1] for p in expected(TONE_START_PATTERN, 0)] != [p[1] for p in expected(TONE_STOP_PATTERN, 0)]
    # the officer's vibration keeps its own, different patterns on its own pin
    assert rig.pulses("buzzer")[:2] == expected(START_PATTERN, 1.01)
    assert {p[1] for p in expected(START_PATTERN, 0)} != {p[1] for p in expected(TONE_START_PATTERN, 0)}
    assert [p[1] for p in expected(STOP_PATTERN, 0)] != [p[1] for p in expected(TONE_STOP_PATTERN, 0)]


@pytest.mark.parametrize("rig", [False], indirect=True)
def test_policy_off_sounds_nothing_and_leaves_the_pin_unclaimed(rig):
    rig.step(0, 1)
    rig.state = OfficerState.RECORDING
    rig.step(1.01, 3)
    rig.state = OfficerState.STANDBY
    rig.step(3.01, 5)
    assert rig.ind.tone is None
    assert rig.log["tone"] == [] and [s.state for s in rig.pins["tone"].states] == [False]
    assert rig.pulses("buzzer")  # the officer still feels start and stop


def test_a_tone_without_a_sounder_is_refused_with_a_sentence():
    [(key, sentence)] = signal_problems(SignalsConfig(start_tone=True), ControlsConfig())
    assert key == "start_tone" and "controls.tone_pin" in sentence
    assert list(signal_problems(SignalsConfig(start_tone=True), ControlsConfig(tone_pin=TONE))) == []
    with pytest.raises(ConfigError, match="controls.tone_pin = 25 is already used by controls.buzzer_pin"):
        ControlsConfig(tone_pin=BUZZER)


def test_the_agent_sounds_the_tone_its_config_asks_for(tmp_path):
    from agent.recorder import Action, Trigger
    from agent.runtime import Agent
    from tests.support import device_config, wait_for

    cfg = device_config(tmp_path, controls={"pin_factory": "mock", "tone_pin": TONE}, signals={"start_tone": True})
    agent = Agent(cfg)
    agent.start()
    try:
        assert agent.indicators.tone is not None
        tone = agent._pins.pin(TONE)
        assert wait_for(lambda: agent.recorder_thread.status.frames_seen > 5)
        assert [s.state for s in tone.states] == [False]  # silent in standby
        agent.trigger(Trigger(Action.START, "test"))
        assert wait_for(lambda: len(tone.states) >= 1 + 2 * len(TONE_START_PATTERN))
    finally:
        agent.stop()
