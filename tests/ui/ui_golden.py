"""Golden-image comparison: pixel-exact against tests/reference/ui/<name>.png.

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
    with Image.open(path) as ref:
        reference = ref.convert("1")
    image = image.convert("1")
    if reference.size != image.size:
        return f"{name}: size {image.size} differs from the reference {reference.size}"
    diff = ImageChops.logical_xor(reference, image)
    box = diff.getbbox()
    if box is None:
        return None
    count = int(np.count_nonzero(np.asarray(diff)))
    return f"{name}: {count} pixels differ from {path} within {box}"


def assert_golden(image: Image.Image, name: str, tmp_path: Path) -> None:
    """``image`` must equal tests/reference/ui/<name>.png pixel for pixel (UPDATE_GOLDEN=1 rewrites it)."""
    if UPDATE:
        REFERENCE.mkdir(parents=True, exist_ok=True)
        image.convert("1").save(REFERENCE / f"{name}.png")
        return
    problem = difference(image, name)
    if problem is not None:
        actual = tmp_path / f"{name}.actual.png"
        image.convert("1").save(actual)
        pytest.fail(f"{problem}; this run's image: {actual}")
