"""Text as 1-bit bitmaps, from the one scalable font that ships inside Pillow.

Pillow (>= 10.1, with FreeType) embeds Aileron Regular in ``ImageFont.load_default(size=...)``, so the
display needs no font package on the device and renders identically wherever the same Pillow runs
(the golden-image tests rely on that). Aileron has no umlauts and no ß; this module composes them: the
base letter plus two dots for Ä Ö Ü ä ö ü, and ß as "ss" (the Swiss spelling). Bold is a one-pixel
stroke. Rendered labels are cached, so a label costs one paste per frame.

Positions are given by the top of the capital letters (``y`` = first row of an "H"), so labels of
different text line up however their ink is shaped; umlaut dots sit above that line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageChops, ImageDraw, ImageFont

logger = logging.getLogger(__name__)

_DIAERESIS = {"Ä": "A", "Ö": "O", "Ü": "U", "ä": "a", "ö": "o", "ü": "u"}
_SPELLED = {"ß": "ss", "ẞ": "SS", "–": "-", "—": "-", "…": "...", "„": '"', "“": '"', "”": '"'}
#: A code point no font has: what FreeType draws for it is the "missing glyph" box.
_NO_SUCH_CHAR = "\U0010fffd"


@dataclass(frozen=True)
class Label:
    """A rendered text: ``mask`` is its ink (mode "1"); ``cap_dy`` rows of it lie above the cap line."""

    mask: Image.Image
    cap_dy: int
    cap_height: int

    @property
    def width(self) -> int:
        return self.mask.width

    @property
    def height(self) -> int:
        return self.mask.height


@lru_cache(maxsize=None)
def font(size: int) -> ImageFont.FreeTypeFont:
    """Pillow's embedded font at ``size`` (raises if this Pillow was built without FreeType)."""
    loaded = ImageFont.load_default(size=size)
    if not isinstance(loaded, ImageFont.FreeTypeFont):
        raise RuntimeError("Pillow was built without FreeType; the display needs Pillow >= 10.1 with FreeType "
                           "(every binary wheel from PyPI has it)")
    return loaded


def _stroke(bold: bool) -> int:
    return 1 if bold else 0


@lru_cache(maxsize=None)
def _cap_box(size: int, bold: bool) -> tuple[int, int]:
    """(top of the capitals, baseline) in a glyph drawn at the origin."""
    _, top, _, base = font(size).getbbox("H", stroke_width=_stroke(bold))
    return top, base


def _run(canvas: Image.Image, text: str, f: ImageFont.FreeTypeFont, stroke: int, pad: int) -> None:
    if text:
        ImageDraw.Draw(canvas).text((pad, pad), text, font=f, fill=1, stroke_width=stroke, stroke_fill=1)


def spell(text: str) -> str:
    """The text as the font can show it: ß → ss and typographic dashes/quotes → ASCII."""
    return "".join(_SPELLED.get(c, c) for c in text)


@lru_cache(maxsize=512)
def label(text: str, size: int, bold: bool = False) -> Label:
    """Render ``text`` once (bold: a one-pixel stroke, meant for sizes of 16 and more)."""
    text = spell(text)
    f, stroke = font(size), _stroke(bold)
    base_text = "".join(_DIAERESIS.get(c, c) for c in text)
    pad = size  # room on every side for strokes and the dots above the capitals
    width = round(f.getlength(base_text)) + 2 * pad
    canvas = Image.new("1", (max(1, width), 2 * size + 2 * pad), 0)
    _run(canvas, base_text, f, stroke, pad)
    dot, gap = max(1, round(size / 9)) + stroke, max(1, round(size / 12))
    for i, char in enumerate(text):
        if char in _DIAERESIS:
            # Where the base letter really landed: what drawing it added to the text before it.
            before = Image.new("1", canvas.size, 0)
            _run(before, base_text[:i], f, stroke, pad)
            upto = Image.new("1", canvas.size, 0)
            _run(upto, base_text[:i + 1], f, stroke, pad)
            x0, y0, x1, _ = ImageChops.logical_xor(upto, before).getbbox()
            inset = round((x1 - x0) * 0.2)
            top = y0 - gap - dot
            for left in (x0 + inset, x1 - inset - dot):
                canvas.paste(1, (left, top, left + dot, top + dot))
    cap_top, baseline = _cap_box(size, bold)
    box = canvas.getbbox()
    if box is None:  # blank text: an empty label that still knows its line height
        return Label(Image.new("1", (0, baseline - cap_top)), 0, baseline - cap_top)
    return Label(canvas.crop(box), pad + cap_top - box[1], baseline - cap_top)


def draw(image: Image.Image, xy: tuple[int, int], text: str, size: int, bold: bool = False,
         fill: int = 1) -> Label:
    """Draw ``text`` with its ink's left edge at x and the top of its capitals at y."""
    lab = label(text, size, bold)
    if lab.width:
        image.paste(fill, (xy[0], xy[1] - lab.cap_dy), lab.mask)
    return lab


def missing_glyphs(text: str, size: int = 12) -> list[str]:
    """Characters of ``text`` that would come out as the font's "missing glyph" box."""
    def ink(char: str) -> tuple:
        mask = label(char, size).mask
        return mask.size, mask.tobytes()

    blank = ink(_NO_SUCH_CHAR)
    return sorted({c for c in spell(text) if c not in _DIAERESIS and not c.isspace() and ink(c) == blank})
