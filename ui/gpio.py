"""Choosing gpiozero's pin library and claiming pins with errors that name the config key.

``pin_factory = "auto"`` follows ``camera.backend = "auto"``: the Pi's own GPIO library on a Raspberry
Pi, gpiozero's MockFactory elsewhere (so the simulation runs on a laptop), and whatever factory is
already installed in ``gpiozero.Device.pin_factory`` (tests, ``GPIOZERO_PIN_FACTORY``) wins over both.
"""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path
from typing import Callable, TypeVar

from base.errors import BodycamError, ConfigError

logger = logging.getLogger(__name__)

T = TypeVar("T")

_FACTORIES = {
    "lgpio": "gpiozero.pins.lgpio:LGPIOFactory",
    "rpigpio": "gpiozero.pins.rpigpio:RPiGPIOFactory",
    "pigpio": "gpiozero.pins.pigpio:PiGPIOFactory",
    "native": "gpiozero.pins.native:NativeFactory",
    "mock": "gpiozero.pins.mock:MockFactory",
}


class ControlsError(BodycamError):
    """A GPIO for the button, LED or buzzer cannot be used; the message names the config key."""


def on_raspberry_pi(model_file: str = "/proc/device-tree/model") -> bool:
    try:
        return Path(model_file).read_text(errors="replace").startswith("Raspberry Pi")
    except OSError:
        return False


def pin_factory(name: str):
    """The factory for ``controls.pin_factory``, or None for "whatever gpiozero uses already"."""
    from gpiozero import Device

    if name == "auto":
        if Device.pin_factory is not None or os.environ.get("GPIOZERO_PIN_FACTORY") or on_raspberry_pi():
            return None
        logger.warning("not a Raspberry Pi: the button, LED and buzzer are simulated (controls.pin_factory = "
                       "'auto'); set it to 'lgpio' on a Pi to fail loudly instead")
        name = "mock"
    try:
        module, cls = _FACTORIES[name].split(":")
    except KeyError:
        raise ConfigError(f"controls.pin_factory = {name!r} is not one of: auto, {', '.join(_FACTORIES)}") from None
    try:
        return getattr(importlib.import_module(module), cls)()
    except Exception as exc:  # ImportError, or the library's own failure to open /dev/gpiochip*
        raise ControlsError(f"controls.pin_factory = {name!r} cannot be used here: {exc}") from exc


def claim(key: str, pin: int, build: Callable[[], T]) -> T:
    """Build a gpiozero device on ``pin``; a failure becomes an error naming ``controls.<key>``."""
    from gpiozero.exc import GPIOPinInUse, GPIOZeroError, PinInvalidPin

    try:
        return build()
    except PinInvalidPin as exc:
        raise ConfigError(f"controls.{key} = {pin}: this board has no GPIO{pin} ({exc})") from exc
    except GPIOPinInUse as exc:
        raise ControlsError(f"controls.{key} = {pin}: GPIO{pin} is already in use by another device or "
                            f"process ({exc})") from exc
    except GPIOZeroError as exc:
        raise ControlsError(f"controls.{key} = {pin}: GPIO{pin} cannot be used: {exc}") from exc
