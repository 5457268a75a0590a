"""Button timing as plain logic: debounced edges in, gestures out. No threads, no GPIO, no clock.

A press starts at its first edge (no added latency). A release counts only after the line has stayed
released for ``debounce_s``; contact bounce inside that window is absorbed, and a "press" shorter than
``debounce_s`` is noise and yields nothing. While the button stays down, HOLD fires at ``hold_s`` and
LONG_HOLD at ``long_hold_s`` — at that moment, not at release, so the officer feels the reaction
while still holding. A release after a hold yields RELEASE (for the audit log), after nothing PRESS.

The caller feeds :meth:`GestureRecognizer.edge` and calls :meth:`GestureRecognizer.poll` no later than
:meth:`GestureRecognizer.next_deadline`; times are any monotonic seconds.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Gesture(str, enum.Enum):
    DOWN = "down"  # the press began (the caller notes the recorder's state now)
    PRESS = "press"  # released before hold_s
    HOLD = "hold"  # still down at hold_s
    LONG_HOLD = "long_hold"  # still down at long_hold_s
    RELEASE = "release"  # released after a hold
    ACTIVE = "active"  # a level input became (and stayed) active


@dataclass(frozen=True)
class GestureEvent:
    gesture: Gesture
    at: float  # when the gesture happened (the threshold or the release), not when it was noticed
    held_s: float  # how long the button had been down at ``at``


class GestureRecognizer:
    """One push button: edges in, :class:`GestureEvent` lists out."""

    def __init__(self, hold_s: float, long_hold_s: float, debounce_s: float):
        if not 0 <= debounce_s < hold_s < long_hold_s:
            raise ValueError(f"need 0 <= debounce ({debounce_s}) < hold ({hold_s}) < long hold ({long_hold_s})")
        self.hold_s, self.long_hold_s, self.debounce_s = hold_s, long_hold_s, debounce_s
        self._down_at: float | None = None
        self._up_at: float | None = None  # a release not yet confirmed
        self._holds = 0  # thresholds passed in this press: 0, 1 (hold) or 2 (long hold)
        self._last_t = float("-inf")

    @property
    def pressed(self) -> bool:
        """Debounced: down from the first edge until a release is confirmed."""
        return self._down_at is not None

    def edge(self, pressed: bool, t: float) -> list[GestureEvent]:
        """The line changed at ``t``; returns what that (and time passing until ``t``) completed."""
        t = max(t, self._last_t)  # edges may arrive a little behind the last poll
        events = self.poll(t)
        if pressed:
            if self._down_at is None:
                self._down_at, self._up_at, self._holds = t, None, 0
                events.append(GestureEvent(Gesture.DOWN, t, 0.0))
            else:
                self._up_at = None  # bounce: the release did not last
        elif self._down_at is not None and self._up_at is None:
            self._up_at = t
        return events

    def poll(self, t: float) -> list[GestureEvent]:
        """Gestures completed by time ``t``."""
        self._last_t = max(self._last_t, t)
        events: list[GestureEvent] = []
        while self._down_at is not None:
            down = self._down_at
            if self._up_at is not None and t >= self._up_at + self.debounce_s:
                held = self._up_at - down
                if self._holds:
                    events.append(GestureEvent(Gesture.RELEASE, self._up_at, held))
                elif held >= self.debounce_s:
                    events.append(GestureEvent(Gesture.PRESS, self._up_at, held))
                self._down_at = self._up_at = None
                break
            threshold = self._threshold()
            if threshold is None:
                break
            at = down + threshold
            still_down_at_threshold = self._up_at is None or self._up_at > at
            if t < at or not still_down_at_threshold:
                break
            self._holds += 1
            events.append(GestureEvent(Gesture.HOLD if self._holds == 1 else Gesture.LONG_HOLD, at, threshold))
        return events

    def next_deadline(self) -> float | None:
        """The next time :meth:`poll` may produce something, or None while idle."""
        if self._down_at is None:
            return None
        if self._up_at is not None:
            return self._up_at + self.debounce_s
        threshold = self._threshold()
        return None if threshold is None else self._down_at + threshold

    def _threshold(self) -> float | None:
        return (self.hold_s, self.long_hold_s, None)[self._holds]


class LevelRecognizer:
    """A level input (holster sensor): ACTIVE once it has stayed active for ``debounce_s``."""

    def __init__(self, debounce_s: float):
        self.debounce_s = debounce_s
        self._since: float | None = None
        self.active = False

    def edge(self, active: bool, t: float) -> list[GestureEvent]:
        events = self.poll(t)
        if active and not self.active and self._since is None:
            self._since = t
        elif not active:
            self._since = None
            self.active = False
        return events

    def poll(self, t: float) -> list[GestureEvent]:
        if self._since is not None and t >= self._since + self.debounce_s:
            self.active, since, self._since = True, self._since, None
            return [GestureEvent(Gesture.ACTIVE, since + self.debounce_s, self.debounce_s)]
        return []

    def next_deadline(self) -> float | None:
        return None if self._since is None else self._since + self.debounce_s
