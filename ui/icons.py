"""Small status icons drawn from primitives (no image files): battery, storage, upload backlog, link,
microphone.

Each function draws on a mode "1" image at (x, y) = top-left, is ``ICON_HEIGHT`` pixels tall, and returns the width it
used, so a row of icons can be laid out left to right. ``fill`` 1 draws lit pixels on a dark ground.
"""

from __future__ import annotations

from PIL import Image, ImageDraw

from . import fonts
from .state import StorageLevel

ICON_HEIGHT = 9
SMALL_FONT = 10  # font size for the numbers next to icons (capitals 7 px)


def battery(image: Image.Image, x: int, y: int, percent: int | None, charging: bool, fill: int = 1) -> int:
    """A battery outline filled to ``percent``; with a "+" while charging; hollow when unknown."""
    draw = ImageDraw.Draw(image)
    w, h = 17, ICON_HEIGHT
    draw.rectangle((x, y, x + w - 3, y + h - 1), outline=fill)
    draw.rectangle((x + w - 2, y + 2, x + w - 1, y + h - 3), fill=fill)  # the terminal nub
    if percent is not None:
        inner = w - 7
        level = max(0, min(inner, round(inner * percent / 100)))
        if level:
            draw.rectangle((x + 2, y + 2, x + 1 + level, y + h - 3), fill=fill)
    if charging:
        cx, cy = x + (w - 2) // 2, y + h // 2
        draw.rectangle((cx - 3, cy - 1, cx + 3, cy + 1), fill=1 - fill)
        draw.rectangle((cx - 1, cy - 3, cx + 1, cy + 3), fill=1 - fill)
        draw.line((cx - 2, cy, cx + 2, cy), fill=fill)
        draw.line((cx, cy - 2, cx, cy + 2), fill=fill)
    return w


def storage(image: Image.Image, x: int, y: int, level: StorageLevel | None, used: float | None,
            fill: int = 1) -> int:
    """An SD card filled from the bottom by ``used``; a "!" instead when low, inverted when full."""
    draw = ImageDraw.Draw(image)
    w, h = 8, ICON_HEIGHT
    outline = [(x + 2, y), (x + w - 1, y), (x + w - 1, y + h - 1), (x, y + h - 1), (x, y + 2)]
    critical = level is StorageLevel.CRITICAL
    draw.polygon(outline, fill=fill if critical else None, outline=fill)
    if level in (StorageLevel.WARN, StorageLevel.CRITICAL):
        mark = 1 - fill if critical else fill  # a "!" where the fill level would be
        draw.rectangle((x + 3, y + 2, x + 4, y + h - 5), fill=mark)
        draw.rectangle((x + 3, y + h - 3, x + 4, y + h - 2), fill=mark)
    elif used is not None:
        rows = round((h - 4) * max(0.0, min(1.0, used)))
        if rows:
            draw.rectangle((x + 2, y + h - 2 - rows, x + w - 3, y + h - 3), fill=fill)
    return w


def backlog(image: Image.Image, x: int, y: int, segments: int, fill: int = 1) -> int:
    """An upward arrow with the number of segments still to upload; nothing when all are delivered."""
    draw = ImageDraw.Draw(image)
    if segments <= 0:
        return 0
    h = ICON_HEIGHT
    cx = x + 3
    draw.polygon([(cx, y), (cx + 3, y + 3), (cx - 3, y + 3)], fill=fill, outline=fill)
    draw.rectangle((cx - 1, y + 3, cx + 1, y + h - 1), fill=fill)
    lab = fonts.draw(image, (x + 9, y + 1), _count(segments), SMALL_FONT, fill=fill)
    return 9 + lab.width


def backlog_width(segments: int) -> int:
    """What :func:`backlog` will use, for laying a row out from the right."""
    return 0 if segments <= 0 else 9 + fonts.label(_count(segments), SMALL_FONT).width


def _count(segments: int) -> str:
    return str(segments) if segments < 1000 else "999+"


def microphone(image: Image.Image, x: int, y: int, fill: int = 1) -> int:
    """A microphone: a capsule in a U-shaped holder on a stand; shown while sound is recorded."""
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((x + 2, y, x + 4, y + 5), radius=1, fill=fill)
    draw.line((x, y + 3, x, y + 4), fill=fill)
    draw.line((x + 6, y + 3, x + 6, y + 4), fill=fill)
    draw.line((x + 1, y + 5, x + 1, y + 6), fill=fill)
    draw.line((x + 5, y + 5, x + 5, y + 6), fill=fill)
    draw.line((x + 2, y + 7, x + 4, y + 7), fill=fill)
    draw.line((x + 3, y + 7, x + 3, y + ICON_HEIGHT - 1), fill=fill)
    draw.line((x + 1, y + ICON_HEIGHT - 1, x + 5, y + ICON_HEIGHT - 1), fill=fill)
    return 7


def link(image: Image.Image, x: int, y: int, up: bool | None, fill: int = 1) -> int:
    """Four rising bars: solid when the uplink is connected, hollow and crossed out when not."""
    draw = ImageDraw.Draw(image)
    if up is None:
        return 0
    h = ICON_HEIGHT
    for i in range(4):
        bar_h = 3 + 2 * i
        left = x + 3 * i
        if up:
            draw.rectangle((left, y + h - bar_h, left + 1, y + h - 1), fill=fill)
        else:  # only the feet of the bars, under a cross
            draw.rectangle((left, y + h - 1, left + 1, y + h - 1), fill=fill)
    if not up:
        draw.line((x + 2, y, x + 8, y + 6), fill=fill, width=1)
        draw.line((x + 2, y + 6, x + 8, y), fill=fill, width=1)
        draw.line((x + 3, y, x + 9, y + 6), fill=fill, width=1)
        draw.line((x + 3, y + 6, x + 9, y), fill=fill, width=1)
    return 11
