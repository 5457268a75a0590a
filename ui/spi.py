"""The SPI panels: luma's drivers on a bus whose DC, reset and backlight pins are gpiozero's.

luma's SPI interface drives its data/command and reset lines through an RPi.GPIO-like module; it gets
:class:`GpiozeroGPIO`, the three calls it uses on gpiozero's pins, so the pin library is the one
``controls.pin_factory`` chose (lgpio on a Pi 5, where RPi.GPIO does not work) and the tests run
luma's real driver code on gpiozero's MockFactory. The TFT backlight is a gpiozero PWMLED
(:class:`PwmBacklight`) behind luma's backlight interface.

The TFTs get their frame as RGB565 (:func:`ui.picture.rgb565`: two bytes a pixel, one numpy
expression) instead of luma's 18-bit path (three bytes a pixel, built as a Python list of 230,400
ints for a 320x240 frame): a third less on the bus and almost no CPU. The grey and colour OLEDs get
luma's own bytes, packed by numpy instead of luma's loop over every pixel (``Image.getdata``); the
tests check they are the same bytes in the same transfers. Everything else — the controllers'
initialisation, rotation, the transfer — stays luma's.
"""

from __future__ import annotations

import logging

import numpy as np
from luma.lcd.device import ili9341, st7789
from luma.oled.device import ssd1322, ssd1351, ssd1362
from PIL import Image

from .picture import rgb565

logger = logging.getLogger(__name__)

#: COLMOD (3Ah) argument for 16 bits a pixel, RGB565 (both controllers).
COLMOD_RGB565 = 0x55
#: Backlight PWM frequency: above what a camera or an eye sees flicker at.
BACKLIGHT_HZ = 1000


class GpiozeroGPIO:
    """The part of RPi.GPIO luma's ``spi``/``bitbang`` interface uses, on gpiozero output devices."""

    LOW, HIGH, OUT, IN, BCM = 0, 1, "out", "in", "bcm"

    def __init__(self, pin_factory=None):
        self._factory = pin_factory
        self._outputs = {}

    def setmode(self, mode) -> None:  # gpiozero always numbers by BCM
        pass

    def setwarnings(self, enabled) -> None:
        pass

    def setup(self, pin: int, direction, initial=None) -> None:
        from gpiozero import DigitalOutputDevice

        if pin not in self._outputs:
            self._outputs[pin] = DigitalOutputDevice(pin, initial_value=bool(initial), pin_factory=self._factory)

    def output(self, pin: int, value) -> None:
        self._outputs[pin].value = bool(value)

    def cleanup(self, pins=None) -> None:
        for pin in list(self._outputs) if pins is None else list(pins):
            device = self._outputs.pop(pin, None)
            if device is not None:
                device.close()


class PwmBacklight:
    """luma's backlight interface (call with True/False or a percentage; ``cleanup``) on a gpiozero PWMLED."""

    def __init__(self, pin: int, percent: int, active_high: bool = True, pin_factory=None):
        from gpiozero import PWMLED

        self._level = percent / 100.0
        self._led = PWMLED(pin, active_high=active_high, initial_value=0, frequency=BACKLIGHT_HZ,
                           pin_factory=pin_factory)

    def __call__(self, value) -> None:
        if self._led.closed:  # luma's exit handler cleans up once more after we did
            return
        if value is True or value is False:
            self._led.value = self._level if value else 0.0
        else:
            self._led.value = max(0.0, min(100.0, float(value))) / 100.0

    @property
    def value(self) -> float:
        return self._led.value

    def cleanup(self) -> None:
        self._led.close()


class SpiPanel:
    """A luma SPI device and the GPIO lines it was lent: ``cleanup`` releases both, so a retry can claim them."""

    def __init__(self, device, gpio: GpiozeroGPIO):
        self._device, self._gpio = device, gpio
        self.width, self.height, self.size, self.mode = device.width, device.height, device.size, device.mode

    def display(self, image: Image.Image) -> None:
        self._device.display(image)

    def contrast(self, level: int) -> None:
        self._device.contrast(level)

    def cleanup(self) -> None:
        try:
            self._device.cleanup()
        finally:
            self._gpio.cleanup()


class _NoBacklight:
    """A TFT whose backlight is wired to 3.3 V (``display.backlight_pin = 0``)."""

    def __call__(self, value) -> None:
        pass


def _push_rgb565(device, image: Image.Image) -> None:
    if image.mode != device.mode or image.size != device.size:
        raise ValueError(f"frame is {image.mode} {image.size}, the display needs {device.mode} {device.size}")
    frame = device.preprocess(image)
    device.set_window(0, 0, device._w, device._h)
    device.data(rgb565(np.asarray(frame)))


class FastST7789(st7789):
    """luma.lcd's ST7789, fed RGB565."""

    def __init__(self, *args, **kwargs):
        self._rgb565 = False  # luma's own initialisation clears the panel in its 18-bit mode
        super().__init__(*args, **kwargs)
        self.command(0x3A, COLMOD_RGB565)
        self._rgb565 = True
        self.clear()

    def display(self, image: Image.Image) -> None:
        if not self._rgb565:
            return super().display(image)
        _push_rgb565(self, image)


class FastILI9341(ili9341):
    """luma.lcd's ILI9341, fed RGB565 as one full frame (the display thread skips unchanged frames)."""

    def __init__(self, *args, **kwargs):
        self._rgb565 = False
        super().__init__(*args, **kwargs)
        self.command(0x3A, COLMOD_RGB565)
        self._rgb565 = True
        self.clear()

    def set_window(self, x1: int, y1: int, x2: int, y2: int) -> None:
        self.command(0x2A, x1 >> 8, x1 & 0xFF, (x2 - 1) >> 8, (x2 - 1) & 0xFF)
        self.command(0x2B, y1 >> 8, y1 & 0xFF, (y2 - 1) >> 8, (y2 - 1) & 0xFF)
        self.command(0x2C)

    def display(self, image: Image.Image) -> None:
        if not self._rgb565:
            return super().display(image)
        _push_rgb565(self, image)


class _FastGreyscale:
    """luma.oled's 4-bit grey packing (Y' = 0.299 R + 0.587 G + 0.114 B, two pixels a byte) in numpy."""

    def display(self, image: Image.Image) -> None:
        if self.mode != "RGB":
            return super().display(image)
        if image.mode != self.mode or image.size != self.size:
            raise ValueError(f"frame is {image.mode} {image.size}, the display needs {self.mode} {self.size}")
        image = self.preprocess(image)
        for _, bounding_box in self.framebuffer.redraw(image):
            left, top, right, bottom = self._inflate_bbox(bounding_box)
            rgb = np.asarray(image.crop((left, top, right, bottom)), dtype=np.uint32)
            grey = ((rgb[..., 0] * 306 + rgb[..., 1] * 601 + rgb[..., 2] * 117) >> 14).astype(np.uint8).ravel()
            first, second = grey[0::2], grey[1::2]
            high, low = (first, second) if self._nibble_order == 0 else (second, first)
            self._set_position(top, right, bottom, left)
            self.data(((high << 4) | low).tobytes())


class FastSSD1322(_FastGreyscale, ssd1322):
    pass


class FastSSD1362(_FastGreyscale, ssd1362):
    pass


class FastSSD1351(ssd1351):
    """luma.oled's SSD1351 (65k colours, RGB565 big-endian), packed by numpy."""

    def display(self, image: Image.Image) -> None:
        if image.mode != self.mode or image.size != self.size:
            raise ValueError(f"frame is {image.mode} {image.size}, the display needs {self.mode} {self.size}")
        image = self.preprocess(image)
        for part, bounding_box in self.framebuffer.redraw(image):
            left, top, right, bottom = self._apply_offsets(bounding_box)
            self._set_position(top, right, bottom, left)
            self.data(rgb565(np.asarray(part.convert("RGB"))))


OLEDS = {"ssd1322": FastSSD1322, "ssd1362": FastSSD1362, "ssd1351": FastSSD1351}


def open_spi_panel(cfg, spi=None, pin_factory=None):
    """The luma device for an SPI panel in ``cfg`` (a DisplayConfig); ``spi`` is a spidev-like object (tests)."""
    from luma.core.interface.serial import spi as spi_interface

    gpio = GpiozeroGPIO(pin_factory)
    serial = backlight = None
    try:
        serial = spi_interface(spi=spi, gpio=gpio, port=cfg.spi_port, device=cfg.spi_device,
                               bus_speed_hz=cfg.spi_speed_mhz * 1_000_000, gpio_DC=cfg.dc_pin,
                               gpio_RST=cfg.reset_pin or None)
        if cfg.driver in ("st7789", "ili9341"):
            backlight = (PwmBacklight(cfg.backlight_pin, cfg.backlight_percent, cfg.backlight_active_high,
                                      pin_factory) if cfg.backlight_pin else _NoBacklight())
            cls = FastST7789 if cfg.driver == "st7789" else FastILI9341
            device = cls(serial, width=cfg.width, height=cfg.height, rotate=cfg.rotation, backlight=backlight)
        else:
            device = OLEDS[cfg.driver](serial, width=cfg.width, height=cfg.height, rotate=cfg.rotation)
            device.contrast(cfg.contrast)
        return SpiPanel(device, gpio)
    except BaseException:
        for part in (backlight, serial):
            if part is not None and hasattr(part, "cleanup"):
                try:
                    part.cleanup()
                except Exception as exc:  # the first error is the one worth reporting
                    logger.debug("releasing a failed SPI display raised %r", exc)
        gpio.cleanup()
        raise
