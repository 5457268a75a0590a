"""The grey and colour size classes: every screen against golden PNGs, and what a citizen relies on.

Golden images live in tests/reference/ui/<class>/ (the 1-bit 128x64 ones stay where they were); a
screen without an image in any class fails here.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from camera import synthetic
from ui.render_panel import COLOUR_PALETTE, GREY_PALETTE, chrome_boxes, metrics, mirror_box
from ui.screens import COLOUR, GREY, MONO, SCREENS, ScreenSpec, render, screen_for
from ui.state import OfficerState
from ui.text import LANGUAGES
from ui_cases import CASES, NOW, view
from ui_golden import REFERENCE, assert_golden, longest_vertical_run

CLASSES = {
    "grey256x64": ScreenSpec(256, 64, mode=GREY),
    "colour128x128": ScreenSpec(128, 128, mode=COLOUR),
    "colour320x240": ScreenSpec(320, 240, mode=COLOUR),
}
#: Capitals of 8 mm on a 2.8" 320x240 TFT (0.178 mm a pixel): legible at 2 m.
TFT_CAP_PX = 45


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("size_class", list(CLASSES))
def test_screen_matches_golden_image(size_class, name, language, tmp_path):
    spec = CLASSES[size_class]
    image = render(dataclasses.replace(CASES[name], language=language), spec)
    assert image.mode == spec.mode and image.size == (spec.width, spec.height)
    assert_golden(image, f"{size_class}/{name}_{language}", tmp_path)


def test_every_screen_has_a_golden_image_in_every_class():
    shown = {screen_for(v) for v in CASES.values()}
    assert shown == set(SCREENS), f"screens without a golden case: {set(SCREENS) - shown}"
    for folder in ["", *(f"{c}/" for c in CLASSES)]:
        for name in CASES:
            for language in LANGUAGES:
                assert (REFERENCE / f"{folder}{name}_{language}.png").exists(), f"{folder}{name}_{language}"


def _palette(spec: ScreenSpec):
    return GREY_PALETTE if spec.mode == GREY else COLOUR_PALETTE


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB")).astype(int)


def _chrome_present(image: Image.Image, spec: ScreenSpec) -> tuple[bool, bool]:
    """(frame, band): every pixel around the content box, the band aside, is the recording colour; the
    band is mostly that colour with the label's ink on it."""
    pal = _palette(spec)
    px = _pixels(image)
    (ix0, iy0, ix1, iy1), (bx0, by0, bx1, by1) = chrome_boxes(spec.width, spec.height)
    is_rec = (px == np.array(pal.rec)).all(axis=2)
    ring = np.ones(is_rec.shape, bool)
    ring[iy0:iy1, ix0:ix1] = False
    ring[by0:by1, bx0:bx1] = False
    ink = (px[by0:by1, bx0:bx1] == np.array(pal.rec_ink)).all(axis=2)
    return bool(is_rec[ring].all()), bool(is_rec[by0:by1, bx0:bx1].mean() > 0.5 and ink.mean() > 0.05)


@pytest.mark.parametrize("size_class", list(CLASSES))
@pytest.mark.parametrize("name", list(CASES))
def test_recording_frame_and_band_on_every_recording_screen_and_no_other(size_class, name):
    spec = CLASSES[size_class]
    v = CASES[name]
    frame, band = _chrome_present(render(v, spec), spec)
    assert (frame, band) == (v.state.recording, v.state.recording)


def test_the_chrome_check_sees_a_frame_painted_over():
    spec = CLASSES["colour320x240"]
    image = render(CASES["recording"], spec)
    (ix0, iy0, ix1, iy1), _ = chrome_boxes(spec.width, spec.height)
    image.paste((0, 0, 0), (0, iy0, ix0, iy1))  # the left side of the frame gone
    assert _chrome_present(image, spec)[0] is False


@pytest.mark.parametrize("language", LANGUAGES)
def test_tft_recording_label_has_8_mm_capitals(language):
    spec = CLASSES["colour320x240"]
    image = render(view(OfficerState.RECORDING, language=language), spec)
    _, (bx0, by0, bx1, by1) = chrome_boxes(spec.width, spec.height)
    band = _pixels(image)[by0:by1, bx0:bx1]
    letters = (band == np.array(COLOUR_PALETTE.rec_ink)).all(axis=2)
    assert metrics(spec.width, spec.height).rec_cap >= TFT_CAP_PX
    assert longest_vertical_run(letters) >= TFT_CAP_PX  # the stems of the capitals (and the dot)


# -- the live picture ---------------------------------------------------------------------------------
FRAME = 0x5A3C_0F96  # every byte different, both bit values in every row of the counter


def _synthetic_preview() -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], tuple[int, int]]:
    """The preview (Y, U, V) the synthetic camera hands the display for frame FRAME, and the pattern's size."""
    pattern = synthetic.TestPattern(640, 360, 30)
    planes = pattern.planes(FRAME, NOW)
    assert synthetic.read_counter(planes[0]) == FRAME  # the reference itself reads back
    return synthetic._preview_planes(planes, synthetic.PREVIEW_WIDTH), (640, 360)


def _read_back(image: Image.Image, spec: ScreenSpec, size: tuple[int, int], unflip: bool) -> int | None:
    x0, y0, x1, y1 = mirror_box(spec.width, spec.height)
    crop = image.convert("L").crop((x0, y0, x1, y1))
    if unflip:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return synthetic.read_counter(np.asarray(crop.resize(size, Image.Resampling.NEAREST)))


@pytest.mark.parametrize("size_class", list(CLASSES))
def test_mirror_shows_the_frame_number_readably_and_mirrored(size_class):
    preview, size = _synthetic_preview()
    spec = CLASSES[size_class]
    mirrored = render(view(OfficerState.MIRROR, preview=preview), spec)
    assert _read_back(mirrored, spec, size, unflip=True) == FRAME
    assert _read_back(mirrored, spec, size, unflip=False) != FRAME  # it really is flipped
    straight = render(view(OfficerState.MIRROR, preview=preview), dataclasses.replace(spec, mirror_flip=False))
    assert _read_back(straight, spec, size, unflip=False) == FRAME


def test_colour_preview_keeps_its_colour_and_grey_panels_show_luminance():
    y = np.full((72, 128), 81, np.uint8)  # BT.601 red: Y 81, U 90, V 240
    u = np.full((36, 64), 90, np.uint8)
    v = np.full((36, 64), 240, np.uint8)
    colour = _pixels(render(view(OfficerState.MIRROR, preview=(y, u, v)), CLASSES["colour128x128"]))
    x0, y0, x1, y1 = mirror_box(128, 128)
    r, g, b = colour[(y0 + y1) // 2, (x0 + x1) // 2]
    assert r > 200 and g < 40 and b < 40
    grey = render(view(OfficerState.MIRROR, preview=(y, u, v)), CLASSES["grey256x64"])
    assert grey.mode == "L"


def test_mono_class_is_unchanged_by_a_colour_preview():
    y = np.asarray(CASES["mirror"].preview)
    u = np.full((36, 64), 90, np.uint8)
    v = np.full((36, 64), 240, np.uint8)
    spec = ScreenSpec(mode=MONO)
    assert render(view(OfficerState.MIRROR, preview=(y, u, v)), spec).tobytes() == \
        render(CASES["mirror"], spec).tobytes()
