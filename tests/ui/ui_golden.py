"""Golden-image comparison: pixel-exact against tests/reference/ui/<name>.png.

1-bit frames are compared as 1-bit images (the 128x64 references); grey and colour frames in their own
mode, value for value (``<name>`` then includes the class's folder, e.g. ``colour320x240/recording_de``).

Run with UPDATE_GOLDEN=1 to rewrite the references instead of comparing; then look at them (they are
what officers and citizens will see) before committing.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageChops

REFERENCE = Path(__file__).resolve().parents[1] / "reference" / "ui"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def difference(image: Image.Image, name: str) -> str | None:
    """None when ``image`` equals the reference ``name`` pixel for pixel, else what differs."""
    path = REFERENCE / f"{name}.png"
    if not path.exists():
        return f"no reference image {path}; create it with UPDATE_GOLDEN=1 and look at it"
    mode = _mode(image)
    with Image.open(path) as ref:
        reference = ref.convert(mode)
    image = image.convert(mode)
    if reference.size != image.size:
        return f"{name}: size {image.size} differs from the reference {reference.size}"
    if mode == "1":
        diff = np.asarray(ImageChops.logical_xor(reference, image))
    else:
        diff = np.asarray(reference) != np.asarray(image)
        if diff.ndim == 3:
            diff = diff.any(axis=2)
    if not diff.any():
        return None
    rows, cols = np.nonzero(diff)
    box = (int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1)
    count = int(np.count_nonzero(diff))
    return f"{name}: {count} pixels differ from {path} within {box}"


def _mode(image: Image.Image) -> str:
    return image.mode if image.mode in ("L", "RGB") else "1"


def assert_golden(image: Image.Image, name: str, tmp_path: Path) -> None:
    """``image`` must equal tests/reference/ui/<name>.png pixel for pixel (UPDATE_GOLDEN=1 rewrites it)."""
    if UPDATE:
        (REFERENCE / f"{name}.png").parent.mkdir(parents=True, exist_ok=True)
        image.convert(_mode(image)).save(REFERENCE / f"{name}.png")
        return
    problem = difference(image, name)
    if problem is not None:
        actual = tmp_path / f"{name.replace('/', '_')}.actual.png"
        image.convert(_mode(image)).save(actual)
        pytest.fail(f"{problem}; this run's image: {actual}")


def longest_vertical_run(ink: np.ndarray) -> int:
    """The tallest unbroken run of set pixels in any column of ``ink``: how tall a letter's stem stands."""
    best = 0
    for column in ink.T:
        run = 0
        for pixel in column:
            run = run + 1 if pixel else 0
            best = max(best, run)
    return best
