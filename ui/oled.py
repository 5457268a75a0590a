"""luma.oled's SSD1306/SSD1309/SH1106 drivers with the frame packing done by numpy.

luma.oled packs a frame into the controller's page layout pixel by pixel in Python (about 2 ms per
128x64 frame on a desktop core, roughly ten times that on a Pi Zero 2 — a fifth of a core at 10
frames/s) and reads pixels with ``Image.getdata``, which Pillow deprecates. These subclasses keep
everything else of luma (initialisation, contrast, rotation, the I2C transfer) and replace only the
packing with ``np.packbits``: the same bytes in the same transfers, which the tests check against
luma's own drivers for every rotation. Should a future luma rename the attributes used here, the
stock packing runs instead (logged once).
"""

from __future__ import annotations

import logging

import numpy as np
from luma.oled.device import sh1106, ssd1306, ssd1309
from PIL import Image

logger = logging.getLogger(__name__)

_fallback_logged = False


def _pages(device, image: Image.Image) -> np.ndarray:
    """The preprocessed (rotated) frame as (pages, width) bytes: bit k of a byte is row 8*page + k."""
    if image.mode != device.mode or image.size != device.size:
        raise ValueError(f"frame is {image.mode} {image.size}, the display needs {device.mode} {device.size}")
    bits = np.asarray(device.preprocess(image), dtype=bool)
    height, width = bits.shape
    return np.packbits(bits.reshape(height // 8, 8, width), axis=1, bitorder="little").reshape(height // 8, width)


def _stock(cls, device, image: Image.Image) -> None:
    global _fallback_logged
    if not _fallback_logged:
        _fallback_logged = True
        logger.warning("this luma.oled version differs from the one ui/oled.py was written for; using its own "
                       "(slower) frame packing", exc_info=True)
    cls.display(device, image)


class FastSSD1306(ssd1306):
    def display(self, image: Image.Image) -> None:
        try:
            colstart, colend, pages, const = self._colstart, self._colend, self._pages, self._const
        except AttributeError:
            return _stock(ssd1306, self, image)
        data = _pages(self, image)
        self.command(const.COLUMNADDR, colstart, colend - 1, const.PAGEADDR, 0x00, pages - 1)
        self.data(data.ravel().tolist())


class FastSSD1309(FastSSD1306, ssd1309):
    pass


class FastSH1106(sh1106):
    def display(self, image: Image.Image) -> None:
        try:
            offset = self._page_address_offset
        except AttributeError:
            return _stock(sh1106, self, image)
        for page, row in enumerate(_pages(self, image)):
            self.command(0xB0 + page, offset, 0x10)
            self.data(row.tolist())


DRIVERS = {"ssd1306": FastSSD1306, "ssd1309": FastSSD1309, "sh1106": FastSH1106}
