"""Renders the pictures of the front display's screens in docs/display/ (run from the repository root):

    PYTHONPATH=$PWD .venv/bin/python docs/display/make_pictures.py

Each picture shows one size class's screens side by side, in German, from the same views as the
golden-image tests (tests/ui/ui_cases.py), each panel in a dark bezel and enlarged so its pixels show.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "ui"))

from ui.screens import COLOUR, GREY, MONO, ScreenSpec, render  # noqa: E402
from ui_cases import CASES  # noqa: E402

CLASSES = {
    "mono128x64": (ScreenSpec(128, 64, mode=MONO), 3),
    "grey256x64": (ScreenSpec(256, 64, mode=GREY), 2),
    "colour128x128": (ScreenSpec(128, 128, mode=COLOUR), 2),
    "colour320x240": (ScreenSpec(320, 240, mode=COLOUR), 1),
}
SCREENS = ("standby", "mirror", "recording", "alert_storage_low", "alert_while_recording", "identify")
BEZEL = 14
MONO_INK = (120, 200, 255)  # a blue-white OLED, as most 128x64 modules are


def panel(image: Image.Image, scale: int) -> Image.Image:
    if image.mode == "1":
        lit = Image.new("RGB", image.size, MONO_INK)
        image = Image.composite(lit, Image.new("RGB", image.size), image)
    image = image.convert("RGB").resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    framed = Image.new("RGB", (image.width + 2 * BEZEL, image.height + 2 * BEZEL), (245, 245, 245))
    ImageDraw.Draw(framed).rounded_rectangle((0, 0, framed.width - 1, framed.height - 1), radius=BEZEL,
                                             fill=(28, 28, 30), outline=(70, 70, 74), width=2)
    framed.paste(image, (BEZEL, BEZEL))
    return framed


def sheet(spec: ScreenSpec, scale: int, language: str = "de") -> Image.Image:
    panels = [panel(render(dataclasses.replace(CASES[name], language=language), spec), scale) for name in SCREENS]
    gap = 12
    columns = 3
    w, h = panels[0].size
    rows = -(-len(panels) // columns)
    out = Image.new("RGB", (columns * w + (columns + 1) * gap, rows * h + (rows + 1) * gap), (245, 245, 245))
    for i, p in enumerate(panels):
        row, col = divmod(i, columns)
        out.paste(p, (gap + col * (w + gap), gap + row * (h + gap)))
    return out


def main() -> None:
    for name, (spec, scale) in CLASSES.items():
        sheet(spec, scale).save(ROOT / "docs" / "display" / f"{name}.png", optimize=True)


if __name__ == "__main__":
    main()
