"""The end of a shift, as the device can tell it: in the dock, not recording, everything handed over.

"Docked" is what the device can measure: the dock contact (``controls.dock_pin``), a GPIO input that is
active while the device sits in its charging dock — the cradle's detect contact, or its 5 V through a
divider, i.e. external power from the dock (a car charger on the USB socket does not count). A shift
is over when the device has been docked without a break for ``checkout.dock_seconds``, is not
recording, and has handed its evidence to the back office (the spool holds no segment without a
receipt; with uploading switched off this last condition is dropped). Only then is the officer
unassigned (``officer_unassigned``, via "dock"): a device put in the dock while a recording is still
being sealed, or while the back office has not yet confirmed the shift's segments, stays assigned
until it has.

:class:`DockWatch` is the rule, a plain object the main thread feeds; :class:`DockContact` reads the
pin through gpiozero (MockFactory in tests).
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from ui.gpio import claim

logger = logging.getLogger(__name__)


class DockContact:
    """The dock contact on ``pin`` (BCM); ``docked`` is its level."""

    def __init__(self, pin: int, pull_up: bool, factory=None):
        from gpiozero import DigitalInputDevice

        self._device = claim("dock_pin", pin, lambda: DigitalInputDevice(pin, pull_up=pull_up, pin_factory=factory))

    @property
    def docked(self) -> bool:
        return bool(self._device.is_active)

    def close(self) -> None:
        self._device.close()


class DockWatch:
    """Says once per stay in the dock when the shift is over (see the module docstring)."""

    def __init__(self, dock_seconds: float, clock: Callable[[], float] = time.monotonic):
        self.dock_seconds = dock_seconds
        self._clock = clock
        self._docked_since: float | None = None
        self._done = False

    @property
    def docked(self) -> bool:
        return self._docked_since is not None

    def shift_over(self, docked: bool, recording: bool, delivered: Callable[[], bool]) -> bool:
        """True once, when the device has been docked long enough, is idle and has delivered everything.

        ``delivered`` is asked only then (it may cost a look at the spool). Taking the device out of the
        dock re-arms the watch.
        """
        now = self._clock()
        if not docked:
            if self._docked_since is not None:
                logger.info("taken out of the dock")
            self._docked_since, self._done = None, False
            return False
        if self._docked_since is None:
            self._docked_since = now
            logger.info("in the dock")
        if self._done or recording or now - self._docked_since < self.dock_seconds or not delivered():
            return False
        self._done = True
        return True

    def assigned_here(self) -> None:
        """An officer was assigned while docked (the next shift badged in before taking the device out):
        that is not the shift that ended, so this stay in the dock unassigns nothing more."""
        if self._docked_since is not None:
            self._done = True

    def try_again(self) -> None:
        """The unassignment could not be recorded: ask again at the next look."""
        self._done = False
