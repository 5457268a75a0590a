"""Button timing as pure logic, with exact times: press, hold, long hold, bounce and noise."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ui.gestures import Gesture, GestureRecognizer, LevelRecognizer

HOLD, LONG, DEBOUNCE = 1.0, 3.0, 0.03


def run(edges, until):
    """Feed (time, pressed) edges, polling at every deadline as the thread would; the gestures with times."""
    r = GestureRecognizer(HOLD, LONG, DEBOUNCE)
    out = []
    pending = sorted(edges)
    while True:
        deadline = r.next_deadline()
        if pending and (deadline is None or pending[0][0] <= deadline):
            t, pressed = pending.pop(0)
            out += r.edge(pressed, t)
        elif deadline is not None and deadline <= until:
            out += r.poll(deadline)
        else:
            break
    out += r.poll(until)
    return [(e.gesture, round(e.at, 6)) for e in out if e.gesture is not Gesture.DOWN]


def test_short_press():
    assert run([(0.0, True), (0.2, False)], 5) == [(Gesture.PRESS, 0.2)]


def test_hold_fires_at_the_threshold_while_still_held():
    assert run([(0.0, True), (1.5, False)], 5) == [(Gesture.HOLD, 1.0), (Gesture.RELEASE, 1.5)]


def test_long_hold_fires_at_three_seconds():
    assert run([(0.0, True), (3.2, False)], 5) == [(Gesture.HOLD, 1.0), (Gesture.LONG_HOLD, 3.0),
                                                   (Gesture.RELEASE, 3.2)]


def test_two_second_hold_is_only_a_hold():
    assert run([(0.0, True), (2.0, False)], 5) == [(Gesture.HOLD, 1.0), (Gesture.RELEASE, 2.0)]


def test_release_just_before_the_threshold_is_a_press():
    assert run([(0.0, True), (0.999, False)], 5) == [(Gesture.PRESS, 0.999)]


def test_contact_bounce_is_absorbed():
    edges = [(0.0, True), (0.004, False), (0.006, True), (0.010, False), (0.012, True), (0.5, False),
             (0.505, True), (0.507, False)]
    assert run(edges, 5) == [(Gesture.PRESS, 0.507)]


def test_a_spike_shorter_than_the_debounce_time_is_noise():
    assert run([(0.0, True), (0.01, False)], 5) == []


def test_a_bounce_across_the_hold_threshold_does_not_cut_the_hold():
    edges = [(0.0, True), (0.99, False), (1.01, True), (1.6, False)]
    assert run(edges, 5) == [(Gesture.HOLD, 1.0), (Gesture.RELEASE, 1.6)]


def test_two_presses_in_a_row():
    assert run([(0.0, True), (0.1, False), (0.5, True), (0.6, False)], 5) == [(Gesture.PRESS, 0.1),
                                                                             (Gesture.PRESS, 0.6)]


def test_thresholds_must_be_ordered():
    with pytest.raises(ValueError, match="debounce"):
        GestureRecognizer(3.0, 1.0, 0.03)


@settings(max_examples=200, deadline=None)
@given(duration=st.floats(0.05, 4.0), bounces=st.lists(st.tuples(st.floats(0.0, 1.0), st.floats(0.001, 0.02)),
                                                       max_size=5))
def test_bounce_never_changes_the_gesture(duration, bounces):
    """A press of ``duration`` with short release-bounces inside it reads exactly like a clean one."""
    clean = run([(0.0, True), (duration, False)], 10)
    edges = [(0.0, True), (duration, False)]
    for where, length in bounces:
        start = 0.001 + where * (duration - 0.002)
        end = start + length
        if DEBOUNCE < duration - end and length < DEBOUNCE:  # a bounce that really re-closes the contact
            edges += [(start, False), (end, True)]
    bouncy = run(edges, 10)
    assert [g for g, _ in bouncy] == [g for g, _ in clean]


def test_level_input_becomes_active_after_the_debounce_time():
    r = LevelRecognizer(0.05)
    assert r.edge(True, 0.0) == [] and r.next_deadline() == 0.05
    assert [e.gesture for e in r.poll(0.05)] == [Gesture.ACTIVE] and r.active
    assert r.poll(9.0) == []  # stays active: fires once
    r.edge(False, 10.0)
    r.edge(True, 11.0)
    r.edge(False, 11.01)  # a flicker
    assert r.poll(12.0) == [] and not r.active
