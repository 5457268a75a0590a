"""The screens: pure functions from an :class:`~ui.view.OfficerView` to the panel's image.

:func:`render` hands the view to the renderer of the panel's size class: :mod:`ui.render_mono` for
the 1-bit OLEDs, :mod:`ui.render_panel` for the grey and colour panels. Which screen shows is
decided for all of them in :mod:`ui.layout`. No clocks, no globals, no I/O: the same view gives the
same pixels (the golden tests rely on it).
"""

from __future__ import annotations

from PIL import Image

from .layout import (ALERT, COLOUR, GREY, IDENTIFY, MIRROR, MONO, RECORDING, RECORDING_CAP_MIN, SCREENS,  # noqa: F401
                     STANDBY, ScreenSpec, blink_on, format_elapsed, screen_for)
from .render_mono import render_mono
from .render_panel import render_panel
from .view import OfficerView


def render(view: OfficerView, spec: ScreenSpec = ScreenSpec()) -> Image.Image:
    """The frame for ``view`` in the panel's pixel kind (``spec.mode``) at ``spec.width`` x ``spec.height``."""
    if spec.mode == MONO:
        return render_mono(view, spec)
    if spec.mode in (GREY, COLOUR):
        return render_panel(view, spec)
    raise ValueError(f"no renderer for pixel mode {spec.mode!r}")
