"""The live picture for the grey and colour panels: a camera preview → an RGB picture of the panel's box.

A preview is what the camera hands over for the display: its low-resolution luma plane (a 2-D
uint8 array), or the full YUV420 frame as three planes ``(y, u, v)`` with the chroma planes at half
size in both directions (picamera2's ``lores`` stream). Everything is numpy or Pillow's C code: crop
to the box's aspect and box-filter (:func:`ui.dither.fit`), flip left-right for the mirror, then
luminance (grey panels, or a luma-only preview) or a BT.601 YUV→RGB conversion (colour panels).
The camera's arrays are only read, never written.

:func:`rgb565` packs an RGB picture into the 16-bit words a colour TFT takes over SPI: two bytes a
pixel instead of the three luma.lcd sends by default, a third less on the bus.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .dither import crop_box, fit, stretch


def luma_of(preview) -> np.ndarray:
    """The luma plane of a preview (a 2-D plane, or the first of ``(y, u, v)``)."""
    if isinstance(preview, tuple):
        return preview[0]
    return preview


def picture(preview, width: int, height: int, flip: bool, colour: bool) -> Image.Image:
    """The preview cropped and scaled to ``width`` x ``height`` as an RGB image (grey unless ``colour``)."""
    if colour and isinstance(preview, tuple):
        # Convert at the preview's size (128x72: a few thousand pixels), then one resize in Pillow's C code.
        y, u, v = preview
        rows, cols = y.shape
        rgb = Image.fromarray(yuv_to_rgb(y, _upsample(u, rows, cols), _upsample(v, rows, cols)))
        box = crop_box(cols, rows, width, height)
        # Enlarging (the 128x72 preview on a 320x240 TFT): nearest, a tenth of the box filter's cost and as
        # sharp; reducing (a bigger preview): the box filter, so nothing aliases.
        grows = box[2] - box[0] <= width and box[3] - box[1] <= height
        image = rgb.resize((width, height), Image.Resampling.NEAREST if grows else Image.Resampling.BOX, box=box,
                           reducing_gap=None if grows else 2.0)
        return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if flip else image
    return Image.fromarray(stretch(fit(luma_of(preview), width, height, flip))).convert("RGB")


def _upsample(chroma: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """A half-size chroma plane at the luma plane's size (each sample doubled: exact enough for a mirror)."""
    return np.repeat(np.repeat(chroma, 2, axis=0), 2, axis=1)[:rows, :cols]


def yuv_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """BT.601 limited-range YUV planes of one size → an (h, w, 3) uint8 RGB array (integer arithmetic)."""
    c = y.astype(np.int32) - 16
    d = u.astype(np.int32) - 128
    e = v.astype(np.int32) - 128
    r = (298 * c + 409 * e + 128) >> 8
    g = (298 * c - 100 * d - 208 * e + 128) >> 8
    b = (298 * c + 516 * d + 128) >> 8
    return np.clip(np.dstack((r, g, b)), 0, 255).astype(np.uint8)


def rgb565(rgb: np.ndarray) -> bytes:
    """An (h, w, 3) uint8 RGB array → big-endian RGB565 words, the order an ST7789/ILI9341 reads them."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    words = np.empty(rgb.shape[:2] + (2,), np.uint8)  # byte arithmetic: half the memory traffic of uint16
    words[..., 0] = (r & 0xF8) | (g >> 5)
    words[..., 1] = ((g << 3) & 0xE0) | (b >> 3)
    return words.tobytes()
