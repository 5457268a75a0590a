"""LED, haptics and the start tone from the recorder's state, on their own thread.

The LED is the signal that must never lie, so nothing but the recorder's state (an
:class:`~ui.state.OfficerStatus` the agent translates from its snapshot) drives it, and no
other part (display, renderer, uplink) can stall or kill it:

* red, steady, whenever a recording runs (RECORDING or FINISHING);
* green in STANDBY and MIRROR;
* an alert (display fault, storage, battery …) blinks the green: 1 Hz when idle; while recording a
  short green blip every 2 s on top of the steady red, so the red never goes out.

The buzzer or vibration motor gives two short pulses when a recording starts, one long pulse when it
stops, and a short reminder pulse every ``reminder_s`` while it runs (0: no reminder). That is the
officer's signal.

The start tone is for the person in front (``signals.start_tone``, a sounder of its own facing out):
three beeps, the last one long, when a recording starts, and long-short when it has ended (after the
post-event time, when nothing is recorded any more), never a reminder. Its patterns differ from the
vibration's, so neither can be taken for the other, and it never sounds for a re-trigger during the
post-event time (the recording never stopped).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from .gpio import claim, pin_factory
from .settings import ControlsConfig
from .state import OfficerState, OfficerStatus

logger = logging.getLogger(__name__)

#: (on, off) seconds per pulse.
START_PATTERN = ((0.12, 0.1), (0.12, 0.0))
STOP_PATTERN = ((0.6, 0.0),)
REMINDER_PATTERN = ((0.15, 0.0),)
#: The tone the person in front hears: start "beep beep beeep", end "beeep beep".
TONE_START_PATTERN = ((0.08, 0.08), (0.08, 0.08), (0.3, 0.0))
TONE_STOP_PATTERN = ((0.3, 0.08), (0.08, 0.0))
TICK_S = 0.02
ALERT_BLINK_S = 1.0  # idle: green on for half of this, off for the other half
RECORDING_BLIP_EVERY_S = 2.0
RECORDING_BLIP_S = 0.15


class IndicatorThread(threading.Thread):
    """Drives ``red``/``green`` LEDs, a ``buzzer`` and a ``tone`` sounder (gpiozero output devices, each optional).

    ``status()`` is the recorder's latest state; ``alerting()`` says whether any alert is raised.
    Both are polled every ``TICK_S``; :meth:`wake` applies a change at once.
    """

    def __init__(self, status: Callable[[], OfficerStatus | None], *, alerting: Callable[[], bool] = lambda: False,
                 red=None, green=None, buzzer=None, tone=None, reminder_s: float = 120.0,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__(name="IndicatorThread", daemon=True)
        self._status = status
        self._alerting = alerting
        self.red, self.green, self.buzzer, self.tone = red, green, buzzer, tone
        self.reminder_s = reminder_s
        self._clock = clock
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._state: OfficerState | None = None
        self._recording_since = 0.0
        self._reminders = 0
        self._buzz: list[tuple[float, bool]] = []  # scheduled (time, on) switches of the buzzer
        self._beep: list[tuple[float, bool]] = []  # … and of the tone sounder
        self._failing: set[str] = set()
        self.fault: BaseException | None = None

    @classmethod
    def from_config(cls, cfg: ControlsConfig, status: Callable[[], OfficerStatus | None], *,
                    alerting: Callable[[], bool] = lambda: False, factory=None,
                    start_tone: bool = False) -> "IndicatorThread":
        """Claims the LED and buzzer pins now (and the sounder's, with ``start_tone``), so a bad pin is an
        error at start-up naming its key."""
        from gpiozero import LED, DigitalOutputDevice

        factory = factory if factory is not None else pin_factory(cfg.pin_factory)

        def output(key: str, kind, active_high: bool):
            pin = getattr(cfg, key)
            if not pin:
                return None
            return claim(key, pin, lambda: kind(pin, active_high=active_high, initial_value=False,
                                                pin_factory=factory))

        claimed = []
        try:
            for key, kind, active_high in (("led_red_pin", LED, cfg.led_active_high),
                                           ("led_green_pin", LED, cfg.led_active_high),
                                           ("buzzer_pin", DigitalOutputDevice, cfg.buzzer_active_high),
                                           ("tone_pin", DigitalOutputDevice, cfg.tone_active_high)):
                claimed.append(output(key, kind, active_high) if key != "tone_pin" or start_tone else None)
        except Exception:
            for device in claimed:
                if device is not None:
                    device.close()  # give back what was claimed before the failing pin
            raise
        red, green, buzzer, tone = claimed
        return cls(status, alerting=alerting, red=red, green=green, buzzer=buzzer, tone=tone,
                   reminder_s=cfg.reminder_seconds)

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """End the thread, switch everything off and release the pins."""
        self._stopping.set()
        self._wake.set()
        if self.is_alive():
            self.join(timeout)
            if self.is_alive():
                logger.error("indicator thread did not stop within %.1f s", timeout)
        for device in (self.red, self.green, self.buzzer, self.tone):
            if device is not None:
                device.close()

    def run(self) -> None:
        try:
            while not self._stopping.is_set():
                self.update(self._clock())
                if self._wake.wait(TICK_S):
                    self._wake.clear()
        except BaseException as exc:
            self.fault = exc
            logger.exception("indicator thread failed; the LED keeps its last colour")
            raise

    # -- one step (public so tests can drive it with their own clock) --------------------------------
    def update(self, now: float) -> None:
        status = self._read("status", self._status)
        state = status.state if status is not None else self._state
        alerting = bool(self._read("alerting", self._alerting))
        if state is not None and state is not self._state:
            self._changed(self._state, state, now)
            self._state = state
        recording = state is not None and state.recording
        if recording:
            green = alerting and now % RECORDING_BLIP_EVERY_S < RECORDING_BLIP_S
        else:
            green = state is not None and (not alerting or now % ALERT_BLINK_S < ALERT_BLINK_S / 2)
        _set(self.red, recording)
        _set(self.green, green)
        self._remind(now)
        while self._buzz and self._buzz[0][0] <= now:
            _set(self.buzzer, self._buzz.pop(0)[1])
        while self._beep and self._beep[0][0] <= now:
            _set(self.tone, self._beep.pop(0)[1])

    def _changed(self, previous: OfficerState | None, state: OfficerState, now: float) -> None:
        if previous is None:
            return  # the first reading after start-up is not a change the officer made
        if state is OfficerState.RECORDING:
            self._recording_since, self._reminders = now, 0
            self._pattern(START_PATTERN, now)
        elif previous is OfficerState.RECORDING:
            self._pattern(STOP_PATTERN, now)
        if state.recording and not previous.recording:
            self._beep = _schedule(TONE_START_PATTERN, now)
        elif previous.recording and not state.recording:
            self._beep = _schedule(TONE_STOP_PATTERN, now)

    def _remind(self, now: float) -> None:
        if self._state is not OfficerState.RECORDING or self.reminder_s <= 0:
            return
        due = self._recording_since + (self._reminders + 1) * self.reminder_s
        if now >= due:
            self._reminders += 1
            self._pattern(REMINDER_PATTERN, now)

    def _pattern(self, pattern, now: float) -> None:
        """Replace whatever is still buzzing with ``pattern``, starting now."""
        self._buzz = _schedule(pattern, now)

    def _read(self, name: str, source: Callable[[], object]):
        try:
            value = source()
        except Exception:
            if name not in self._failing:
                logger.exception("indicator source %r failed; keeping the last known state", name)
                self._failing.add(name)
            return None
        self._failing.discard(name)
        return value


def _schedule(pattern, now: float) -> list[tuple[float, bool]]:
    """The (time, on) switches of ``pattern`` ((on, off) seconds per pulse) starting at ``now``."""
    switches, t = [], now
    for on_s, off_s in pattern:
        switches += [(t, True), (t + on_s, False)]
        t += on_s + off_s
    return switches


def _set(device, on: bool) -> None:
    if device is not None and bool(device.value) != on:
        device.value = on
