"""The record button and the trigger input: GPIO edges → gestures → requests to the recorder.

One button, three steps, and a bump can never stop a recording:

* short press → ``MIRROR_TOGGLE`` (display on as an announcement, nothing stored);
* hold ``hold_s`` (1 s) → ``START``, recognised while still held;
* hold ``long_hold_s`` (3 s) → ``STOP`` — only if this press began while recording. A press that
  started a recording cannot also stop it, and a 1-2 s hold during a recording does nothing.

The optional trigger input (e.g. a holster sensor) starts a recording when it becomes active; it
never stops one. gpiozero's callbacks only enqueue the edge with its time; :class:`ControlsThread`
does the timing (see :mod:`ui.gestures`) and calls ``on_request`` with a :class:`ControlRequest` of
origin "button" or "input"; the agent turns it into a recorder trigger.
"""

from __future__ import annotations

import enum
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable

from .gestures import Gesture, GestureEvent, GestureRecognizer, LevelRecognizer
from .gpio import claim, pin_factory
from .settings import ControlsConfig
from .state import OfficerState, OfficerStatus

logger = logging.getLogger(__name__)

BUTTON, INPUT = "button", "input"
_STOP = object()
#: Longest wait without an edge or a deadline, so a lost wake-up can never stall gestures for long.
IDLE_WAIT_S = 0.5


class Request(str, enum.Enum):
    """What the officer asks of the recorder (the values are the recorder's action names)."""

    START = "start"
    STOP = "stop"
    MIRROR_TOGGLE = "mirror_toggle"


@dataclass(frozen=True)
class ControlRequest:
    """One request from the button or the trigger input, with what caused it (for the log)."""

    action: Request
    origin: str  # "button" or "input"
    detail: str = ""


class ControlsThread(threading.Thread):
    """Turns button and trigger-input edges into :class:`ControlRequest` calls on ``on_request``.

    ``status`` returns the recorder's latest state (read at the start of each press, to tell a
    stop gesture from a start). ``on_gesture(name)`` reports every gesture for the audit log:
    "press", "hold", "long_hold", "release" and "input". Both callbacks run on this thread and must
    not block (the agent's handler only enqueues a trigger for the recorder).
    """

    def __init__(self, on_request: Callable[[ControlRequest], None], *,
                 status: Callable[[], OfficerStatus | None] = lambda: None,
                 on_gesture: Callable[[str], None] | None = None,
                 button_pin: int = 17, button_pull_up: bool = True,
                 hold_s: float = 1.0, long_hold_s: float = 3.0, debounce_s: float = 0.03,
                 trigger_pin: int = 0, trigger_pull_up: bool = True, factory=None,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__(name="ControlsThread", daemon=True)
        # Not gpiozero's Button: the hold timing is ours (ui.gestures), and Button's own hold thread
        # makes close() wait up to hold_time while the button is down.
        from gpiozero import DigitalInputDevice

        self._on_request = on_request
        self._status = status
        self._on_gesture = on_gesture
        self._clock = clock
        self._edges: queue.SimpleQueue = queue.SimpleQueue()
        self._recognizers = {BUTTON: GestureRecognizer(hold_s, long_hold_s, debounce_s)}
        self._recording_at_down = False
        self._started_this_press = False
        self.fault: BaseException | None = None
        self._devices = []
        button = claim("button_pin", button_pin,
                       lambda: DigitalInputDevice(button_pin, pull_up=button_pull_up, pin_factory=factory))
        self._devices.append(button)
        self._ignore_until_release = button.is_active
        if self._ignore_until_release:
            logger.warning("the record button is pressed at start-up (stuck, or held?); it is ignored until "
                           "released")
        button.when_activated = lambda: self._edge(BUTTON, True)
        button.when_deactivated = lambda: self._edge(BUTTON, False)
        if trigger_pin:
            self._recognizers[INPUT] = LevelRecognizer(debounce_s)
            try:
                sensor = claim("trigger_pin", trigger_pin,
                               lambda: DigitalInputDevice(trigger_pin, pull_up=trigger_pull_up, pin_factory=factory))
            except Exception:
                button.close()  # give the button's pin back before reporting the bad trigger pin
                raise
            self._devices.append(sensor)
            sensor.when_activated = lambda: self._edge(INPUT, True)
            sensor.when_deactivated = lambda: self._edge(INPUT, False)
            if sensor.is_active:
                logger.warning("the trigger input is active at start-up; it starts nothing until it is "
                               "released and becomes active again")
                self._recognizers[INPUT].active = True

    @classmethod
    def from_config(cls, cfg: ControlsConfig, on_request: Callable[[ControlRequest], None], *,
                    status: Callable[[], OfficerStatus | None] = lambda: None,
                    on_gesture: Callable[[str], None] | None = None, factory=None) -> "ControlsThread":
        """Claims the pins now, so a bad pin is an error at start-up naming its key."""
        return cls(on_request, status=status, on_gesture=on_gesture, button_pin=cfg.button_pin,
                   button_pull_up=cfg.button_pull_up, hold_s=cfg.hold_seconds, long_hold_s=cfg.long_hold_seconds,
                   debounce_s=cfg.debounce_seconds, trigger_pin=cfg.trigger_pin, trigger_pull_up=cfg.trigger_pull_up,
                   factory=factory if factory is not None else pin_factory(cfg.pin_factory))

    # -- gpiozero's thread ---------------------------------------------------------------------------
    def _edge(self, source: str, active: bool) -> None:
        self._edges.put((source, active, self._clock()))

    # -- other threads -------------------------------------------------------------------------------
    def stop(self, timeout: float = 5.0) -> None:
        """End the thread and release the pins."""
        self._edges.put(_STOP)
        if self.is_alive():
            self.join(timeout)
            if self.is_alive():
                logger.error("controls thread did not stop within %.1f s", timeout)
        for device in self._devices:
            device.close()

    # -- the thread ----------------------------------------------------------------------------------
    def run(self) -> None:
        try:
            while True:
                item = self._next_edge()
                if item is _STOP:
                    return
                now = self._clock()
                if item is not None:
                    source, active, at = item
                    self._handle(source, self._feed(source, active, at))
                for source, recognizer in self._recognizers.items():
                    self._handle(source, recognizer.poll(now))
        except BaseException as exc:
            self.fault = exc
            logger.exception("controls thread failed; the button does nothing until it is restarted")
            raise

    def _next_edge(self):
        deadlines = [d for r in self._recognizers.values() if (d := r.next_deadline()) is not None]
        timeout = IDLE_WAIT_S if not deadlines else max(0.0, min(min(deadlines) - self._clock(), IDLE_WAIT_S))
        try:
            return self._edges.get(timeout=timeout)
        except queue.Empty:
            return None

    def _feed(self, source: str, active: bool, at: float) -> list[GestureEvent]:
        if source == BUTTON and self._ignore_until_release:
            if not active:
                self._ignore_until_release = False
            return []
        return self._recognizers[source].edge(active, at)

    def _handle(self, source: str, events: list[GestureEvent]) -> None:
        for event in events:
            gesture = event.gesture
            if gesture is Gesture.DOWN:
                status = self._status()
                self._recording_at_down = status is not None and status.state is OfficerState.RECORDING
                self._started_this_press = False
                continue
            self._report(source, gesture)
            if gesture is Gesture.ACTIVE:
                self._send(Request.START, INPUT, "trigger input active")
            elif gesture is Gesture.PRESS:
                self._send(Request.MIRROR_TOGGLE, BUTTON, f"press {event.held_s:.2f} s")
            elif gesture is Gesture.HOLD and not self._recording_at_down:
                self._started_this_press = True
                self._send(Request.START, BUTTON, f"hold {event.held_s:.1f} s")
            elif gesture is Gesture.LONG_HOLD and not self._started_this_press:
                self._send(Request.STOP, BUTTON, f"hold {event.held_s:.1f} s")

    def _report(self, source: str, gesture: Gesture) -> None:
        if self._on_gesture is not None:
            self._on_gesture("input" if source == INPUT else gesture.value)

    def _send(self, action: Request, origin: str, detail: str) -> None:
        logger.info("%s: %s (%s)", origin, action.value, detail)
        self._on_request(ControlRequest(action, origin, detail))
