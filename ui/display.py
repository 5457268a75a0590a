"""The front display: opening the luma device named in config, and the thread that keeps it current.

:func:`open_device` builds the device (I2C OLEDs through luma.oled, with the frame packing of
:mod:`ui.oled`; the SPI grey and colour OLEDs and TFTs through luma.oled and luma.lcd, see
:mod:`ui.spi`; luma's dummy for tests; the luma.emulator PNG/GIF writers for development).
:class:`DisplayThread` renders the latest :class:`~ui.view.OfficerView` at a fixed rate and pushes
it. It only ever *reads* snapshots, so a slow or dead display cannot hold up capture or the
recorder. When the device fails (an I2C error, the cable pulled) the thread records a
:class:`DisplayFault` for the alert list and telemetry, drops the device and tries to open it again
with a growing pause; recording goes on, and the LED (driven by its own thread) keeps showing the
state.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

from PIL import Image

from base.errors import BodycamError, ConfigError

from .screens import COLOUR, GREY, MONO, ScreenSpec, render
from .settings import DRIVER_SIZES, I2C_DRIVERS, SPI_DRIVERS, DisplayConfig
from .view import OfficerView

logger = logging.getLogger(__name__)

#: The animated-GIF emulator keeps every frame in memory; stop collecting after this many.
GIF_MAX_FRAMES = 600
RETRY_FIRST_S = 1.0
RETRY_MAX_S = 30.0
#: Push an unchanged frame anyway this often: a display that reset itself (brown-out) is repainted.
REFRESH_S = 5.0
#: The achieved frame rate is measured over this long, and logged when it falls short of the configured one.
RATE_WINDOW_S = 10.0
#: Short of the configured rate by more than this share, the log says what the bus carries.
RATE_SHORTFALL = 0.1


class DisplayError(BodycamError):
    """The front display cannot be opened or written; the message says what to check."""


@dataclass(frozen=True)
class DisplayFault:
    """Why the display is not showing frames, since when, and how many attempts failed in a row."""

    message: str
    since: float  # wall-clock time of the first failure
    failures: int

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class DisplayStats:
    """Counters for telemetry and the benchmark."""

    frames_pushed: int
    frames_unchanged: int  # identical to the last push, not sent
    failures: int
    fault: DisplayFault | None
    last_push_s: float  # render + push time of the last frame that was sent
    fps: float  # frames rendered per second over the last RATE_WINDOW_S: below ``fps`` when the bus is too slow


#: The screens' pixel mode for each kind of panel.
PIXEL_MODES = {"mono": MONO, "grey": GREY, "colour": COLOUR}


def screen_spec(cfg: DisplayConfig) -> ScreenSpec:
    """The canvas the screens draw on: the panel's size, turned when it is mounted on its side."""
    width, height = (cfg.width, cfg.height) if cfg.rotation % 2 == 0 else (cfg.height, cfg.width)
    return ScreenSpec(width, height, cfg.mirror_flip, cfg.dither, PIXEL_MODES[cfg.pixels])


def _device_mode(cfg: DisplayConfig) -> str:
    """The mode luma's dummy and emulator take for this panel (they have no grey mode: RGB for both)."""
    return "1" if cfg.pixels == "mono" else "RGB"


def location(cfg: DisplayConfig) -> str:
    """Where the display should be, for messages."""
    if cfg.driver in I2C_DRIVERS:
        return f"I2C bus {cfg.i2c_port} at 0x{cfg.i2c_address:02X}"
    if cfg.driver in SPI_DRIVERS:
        return f"SPI bus /dev/spidev{cfg.spi_port}.{cfg.spi_device}"
    return f"the {cfg.driver} display"


def open_device(cfg: DisplayConfig, bus=None, *, spi=None, pin_factory=None):
    """The luma device for ``cfg.driver``.

    ``bus`` is an smbus-like object for the I2C OLEDs and ``spi`` a spidev-like one for the SPI panels
    (tests); without them smbus2/spidev open the port. ``pin_factory`` is gpiozero's, for an SPI
    panel's DC, reset and backlight pins (None: gpiozero's default). Raises :class:`DisplayError` with
    a sentence when the hardware is missing or not accessible.
    """
    driver = cfg.driver
    if driver == "dummy":
        from luma.core.device import dummy

        return dummy(width=cfg.width, height=cfg.height, rotate=cfg.rotation, mode=_device_mode(cfg))
    if driver == "emulator":
        return _open_emulator(cfg)
    if driver in I2C_DRIVERS:
        return _open_oled(cfg, bus)
    if driver in SPI_DRIVERS:
        return _open_spi(cfg, spi, pin_factory)
    raise ConfigError(f"display.driver = {driver!r} is not one of: dummy, emulator, {', '.join(DRIVER_SIZES)}")


def switch_off(cfg: DisplayConfig, bus=None) -> None:
    """Blank the panel and power it down.

    ``bodycam display-off``, the agent unit's ExecStopPost: after a crash or SIGKILL the OLED controller
    keeps showing the last frame it got — possibly "AUFNAHME" — for as long as it has power. The dummy
    and the emulator have nothing to switch off.
    """
    if cfg.driver in DRIVER_SIZES:
        open_device(cfg, bus).cleanup()


def _open_oled(cfg: DisplayConfig, bus):
    import luma.core.error
    from luma.core.interface.serial import i2c

    from .oled import DRIVERS

    where = location(cfg)
    serial = None
    try:
        serial = i2c(bus=bus, port=cfg.i2c_port, address=cfg.i2c_address)
        device = DRIVERS[cfg.driver](serial, width=cfg.width, height=cfg.height, rotate=cfg.rotation)
        device.contrast(cfg.contrast)
        return device
    except (OSError, luma.core.error.Error) as exc:
        if serial is not None:
            _quietly_close(serial)
        raise device_error(exc, where) from exc


def _open_spi(cfg: DisplayConfig, spi, pin_factory):
    import luma.core.error
    from gpiozero.exc import GPIOPinInUse, GPIOZeroError, PinInvalidPin

    from .spi import open_spi_panel

    try:
        return open_spi_panel(cfg, spi, pin_factory)
    except (PinInvalidPin, GPIOPinInUse, GPIOZeroError) as exc:
        raise DisplayError(f"front display: {_pin_key(cfg, exc)} cannot be used: {exc}") from exc
    except (OSError, luma.core.error.Error) as exc:
        raise spi_error(exc, cfg) from exc


def _pin_key(cfg: DisplayConfig, exc: BaseException) -> str:
    """The config key of the pin an error names (gpiozero says "GPIO22"), or all of them when it does not say."""
    message = str(exc)
    for key, pin in cfg.spi_pins().items():
        if f"GPIO{pin}" in message or f"pin {pin}" in message:
            return f"display.{key} = {pin}"
    return "one of " + ", ".join(f"display.{key} = {pin}" for key, pin in cfg.spi_pins().items())


def spi_error(exc: BaseException, cfg: DisplayConfig) -> DisplayError:
    """A sentence for what luma or the SPI bus raised, naming the keys to check."""
    import luma.core.error

    bus = location(cfg)
    code = getattr(exc, "errno", None)
    if code in (errno.EACCES, errno.EPERM):
        return DisplayError(f"front display: permission denied on {bus}; add the agent's user to the 'spi' group")
    if isinstance(exc, luma.core.error.DeviceNotFoundError) or code == errno.ENOENT:
        return DisplayError(f"front display: {bus} does not exist; enable SPI (raspi-config → Interface Options → "
                            "SPI) and check display.spi_port and display.spi_device")
    if isinstance(exc, luma.core.error.DeviceDisplayModeError):
        return DisplayError(f"front display: the {cfg.driver} driver refuses display.width/display.height = "
                            f"{cfg.width}x{cfg.height}: {exc}")
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return DisplayError(f"front display on {bus} failed: {reason}")


def _open_emulator(cfg: DisplayConfig):
    try:
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # pygame greets on stdout otherwise
        from luma.emulator.device import capture, gifanim
    except ImportError as exc:
        raise DisplayError("display.driver = 'emulator' needs luma.emulator and pygame "
                           "(pip install luma.emulator)") from exc
    path = Path(cfg.emulator_path)
    mode, scale = _device_mode(cfg), max(1, 512 // max(cfg.width, cfg.height))  # 128 px wide: 4x, 320: 1x
    try:
        if path.suffix.lower() == ".gif":
            return _BoundedGif(gifanim, width=cfg.width, height=cfg.height, rotate=cfg.rotation, mode=mode,
                               transform="identity", scale=scale, filename=str(path), duration=1.0 / cfg.fps)
        template = str(path.with_name(path.stem + "_{0:06d}" + path.suffix))
        return capture(width=cfg.width, height=cfg.height, rotate=cfg.rotation, mode=mode,
                       transform="identity", scale=scale, file_template=template)
    except RuntimeError as exc:  # luma.emulator's way of saying pygame is missing
        raise DisplayError(f"display.driver = 'emulator' cannot start: {exc}") from exc


class _BoundedGif:
    """luma.emulator's gifanim, capped at GIF_MAX_FRAMES (it keeps every frame in memory) and written on
    cleanup, so the GIF exists when the display stops (luma also writes it once more at exit)."""

    def __init__(self, gifanim_cls, **kwargs):
        self._device = gifanim_cls(**kwargs)
        self._frames = 0
        self._written = False
        self.width, self.height, self.size, self.mode = (self._device.width, self._device.height,
                                                         self._device.size, self._device.mode)

    def display(self, image: Image.Image) -> None:
        if self._frames == GIF_MAX_FRAMES:
            logger.warning("display emulator: %d frames collected; later frames are not added to the GIF",
                           GIF_MAX_FRAMES)
        self._frames += 1
        if self._frames <= GIF_MAX_FRAMES:
            self._device.display(image)

    def cleanup(self) -> None:
        if not self._written:
            self._written = True
            self._device.write_animation()


def device_error(exc: BaseException, where: str) -> DisplayError:
    """A sentence for what luma or the I2C bus raised, naming where the display should be."""
    import luma.core.error

    code = getattr(exc, "errno", None)
    if isinstance(exc, luma.core.error.DevicePermissionError) or code in (errno.EACCES, errno.EPERM):
        return DisplayError(f"front display: permission denied on {where}; add the agent's user to the "
                            "'i2c' group")
    if isinstance(exc, luma.core.error.DeviceNotFoundError) and "address" not in str(exc) or code == errno.ENOENT:
        return DisplayError(f"front display: {where} does not exist; enable I2C (raspi-config → Interface "
                            "Options → I2C) and check display.i2c_port")
    if isinstance(exc, luma.core.error.DeviceNotFoundError) or code in (errno.EIO, errno.EREMOTEIO, errno.ENXIO):
        return DisplayError(f"front display: nothing answers on {where}; check the cable and display.i2c_address "
                            "('i2cdetect -y PORT' lists what is connected)")
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return DisplayError(f"front display on {where} failed: {reason}")


def _quietly_close(resource) -> None:
    """Release a device or bus that already failed; a second failure adds nothing worth raising."""
    try:
        resource.cleanup()
    except Exception as exc:  # the device is gone either way; the first error is what gets reported
        logger.debug("closing the failed display raised %r", exc)


class DisplayThread(threading.Thread):
    """Renders ``snapshot()`` at ``fps`` and pushes it to the device from ``open_device()``.

    ``wake()`` renders at once (call it when the recorder's state changes, so the recording mark
    appears without waiting for the next tick). ``fault`` is None while frames reach the display.
    """

    def __init__(self, open_device: Callable[[], object], snapshot: Callable[[], OfficerView],
                 render: Callable[[OfficerView], Image.Image], fps: float = 10.0, *,
                 on_fault: Callable[[DisplayFault | None], None] | None = None,
                 retry_first_s: float = RETRY_FIRST_S, retry_max_s: float = RETRY_MAX_S,
                 where: str = "the display", clock: Callable[[], float] = time.monotonic):
        super().__init__(name="DisplayThread", daemon=True)
        self._open = open_device
        self._snapshot = snapshot
        self._render = render
        self.period = 1.0 / fps
        self._on_fault = on_fault
        self._retry_first, self._retry_max = retry_first_s, retry_max_s
        self._where = where
        self._clock = clock
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._device = None
        self._retry_at = 0.0
        self._retry_delay = retry_first_s
        self._last_bytes: bytes | None = None
        self._last_push_at = 0.0
        self._fault: DisplayFault | None = None
        self._crash: BaseException | None = None
        self._crash_at = 0.0
        self._failed_render: str | None = None
        self.frames_pushed = 0
        self.frames_unchanged = 0
        self.failures = 0
        self.last_push_s = 0.0
        self.fps = 0.0
        self._rate_start: float | None = None
        self._rate_frames = 0
        self._rate_short = False

    # -- other threads -------------------------------------------------------------------------------
    @property
    def fault(self) -> DisplayFault | None:
        """The current fault, also when the thread itself has died (which it should never do)."""
        if self._crash is not None:
            return DisplayFault(f"display thread stopped: {self._crash!r}", self._crash_at, self.failures)
        return self._fault

    def stats(self) -> DisplayStats:
        return DisplayStats(self.frames_pushed, self.frames_unchanged, self.failures, self.fault, self.last_push_s,
                            self.fps)

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._wake.set()
        self.join(timeout)
        if self.is_alive():
            logger.error("display thread did not stop within %.1f s", timeout)

    # -- the thread ----------------------------------------------------------------------------------
    def run(self) -> None:
        try:
            due = self._clock()
            while not self._stopping.is_set():
                self._frame()
                due += self.period
                now = self._clock()
                if due < now:  # behind (slow bus): skip ticks instead of rushing to catch up
                    due = now
                if self._wake.wait(due - now):
                    self._wake.clear()
                    due = self._clock()
        except BaseException as exc:
            self._crash, self._crash_at = exc, time.time()
            logger.exception("display thread failed; the recording is not affected")
            raise
        finally:
            if self._device is not None:
                _quietly_close(self._device)
                self._device = None

    def _frame(self) -> None:
        now = self._clock()
        if self._device is None:
            if now < self._retry_at:
                return
            try:
                self._device = self._open()
            except Exception as exc:  # any failure to open is a display fault, never a crash
                self._failed(exc, now)
                return
        started = time.perf_counter()
        image = self._draw()
        if image is None:
            return
        mode = getattr(self._device, "mode", image.mode)
        if image.mode != mode:  # luma's grey OLEDs, the dummy and the emulator take grey frames as RGB
            image = image.convert(mode)
        data = image.tobytes()
        if data == self._last_bytes and now - self._last_push_at < REFRESH_S:
            self.frames_unchanged += 1
            self._count_rate(now)
            return
        try:
            self._device.display(image)
        except Exception as exc:  # I2C errors, a vanished device: a fault to report, not a crash
            _quietly_close(self._device)
            self._device = None
            self._last_bytes = None
            self._failed(exc, now)
            return
        self._last_bytes, self._last_push_at = data, now
        self.frames_pushed += 1
        self.last_push_s = time.perf_counter() - started
        self._count_rate(now)
        if self._fault is not None:
            logger.warning("front display works again (after %d failed attempts)", self._fault.failures)
            self._set_fault(None)
        self._retry_delay = self._retry_first

    def _count_rate(self, now: float) -> None:
        """The rate the display keeps up (the thread skips ticks it is too slow for, e.g. a slow SPI bus)."""
        if self._rate_start is None:
            self._rate_start, self._rate_frames = now, 0
            return
        self._rate_frames += 1
        elapsed = now - self._rate_start
        if elapsed < RATE_WINDOW_S:
            return
        self.fps = self._rate_frames / elapsed
        self._rate_start, self._rate_frames = now, 0
        wanted = 1.0 / self.period
        short = self.fps < wanted * (1 - RATE_SHORTFALL)
        if short and not self._rate_short:
            logger.warning("front display keeps up %.1f frames/s of the %.0f configured (the bus or the CPU is too "
                           "slow); frames are skipped, never queued", self.fps, wanted)
        elif self._rate_short and not short:
            logger.info("front display keeps up its %.0f frames/s again", wanted)
        self._rate_short = short

    def _draw(self) -> Image.Image | None:
        """Snapshot and render; a bug here is logged once per message and shown as a display fault."""
        try:
            return self._render(self._snapshot())
        except Exception as exc:
            message = f"rendering the display failed: {exc!r}"
            if message != self._failed_render:
                logger.exception("%s", message)
                self._failed_render = message
            self.failures += 1
            self._set_fault(DisplayFault(message, time.time(), self.failures))
            return None

    def _failed(self, exc: BaseException, now: float) -> None:
        self.failures += 1
        error = exc if isinstance(exc, DisplayError) else device_error(exc, self._where)
        previous = self._fault
        fault = DisplayFault(str(error), previous.since if previous else time.time(),
                             (previous.failures if previous else 0) + 1)
        if previous is None:
            logger.error("%s — recording continues; retrying", error, exc_info=not isinstance(exc, DisplayError))
        self._set_fault(fault)
        self._retry_at = now + self._retry_delay
        self._retry_delay = min(self._retry_max, self._retry_delay * 2)

    def _set_fault(self, fault: DisplayFault | None) -> None:
        changed = (fault is None) != (self._fault is None)
        self._fault = fault
        if changed and self._on_fault is not None:
            try:
                self._on_fault(fault)
            except Exception:
                logger.exception("display fault listener failed")


def wake_on_state_change(*threads) -> Callable[[object], None]:
    """A callback for each new :class:`~ui.state.OfficerStatus`: wakes ``threads`` (display, indicators)
    when the state changes, so the recording mark shows without waiting a tick. The agent calls it on
    the recorder thread, where it only sets events."""
    last = [None]

    def on_status(status) -> None:
        if status.state is not last[0]:
            last[0] = status.state
            for thread in threads:
                thread.wake()

    return on_status


def build_display_thread(cfg: DisplayConfig, snapshot: Callable[[], OfficerView], *,
                         on_fault: Callable[[DisplayFault | None], None] | None = None, bus=None, spi=None,
                         pin_factory=None) -> DisplayThread:
    """The display thread for ``cfg`` (not started): device from config, screens at the configured size."""
    return DisplayThread(partial(open_device, cfg, bus, spi=spi, pin_factory=pin_factory), snapshot,
                         partial(render, spec=screen_spec(cfg)), cfg.fps, on_fault=on_fault, where=location(cfg))
