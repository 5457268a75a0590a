"""What the display shows, independent of the panel: the screen for a view, the panel's size class.

:func:`screen_for` decides in one place which screen shows: while recording, the recording (or an
alert with the recording mark); when not recording, the back office's identify request, then an
alert, then the recorder's state picks STANDBY or MIRROR. While recording, even an alert screen keeps
the recording mark — the person in front of the camera must always be able to tell.

How a screen is laid out belongs to the renderer of the panel's size class (:mod:`ui.render_mono`
for the small 1-bit OLEDs, :mod:`ui.render_panel` for the grey and colour panels); :mod:`ui.screens`
picks it. A mark every screen of a class shows (the recording dot, a status icon) is drawn by that
class's renderer, so a new mark is added once per class.
"""

from __future__ import annotations

from dataclasses import dataclass

from .dither import FLOYD_STEINBERG
from .state import OfficerState
from .view import OfficerView

STANDBY, MIRROR, RECORDING, ALERT, IDENTIFY = "standby", "mirror", "recording", "alert", "identify"
#: Every screen; each size class has a golden image of each (the tests check none is missing).
SCREENS = (STANDBY, MIRROR, RECORDING, ALERT, IDENTIFY)
#: Minimum height of the recording label's capitals, in pixels (legible at arm's length).
RECORDING_CAP_MIN = 16

#: Pixel kinds: 1-bit OLED, 16-level grey OLED, colour OLED/TFT (Pillow modes).
MONO, GREY, COLOUR = "1", "L", "RGB"


@dataclass(frozen=True)
class ScreenSpec:
    """The display's geometry, its pixel kind and how the mirror is made; fixed for the life of the display."""

    width: int = 128
    height: int = 64
    mirror_flip: bool = True
    dither: str = FLOYD_STEINBERG
    mode: str = MONO


def screen_for(view: OfficerView) -> str:
    if view.identify and not view.state.recording:  # never hide a recording behind it
        return IDENTIFY
    if view.alerts:
        return ALERT
    if view.state.recording:
        return RECORDING
    if view.state is OfficerState.MIRROR:
        return MIRROR
    return STANDBY


def blink_on(view: OfficerView) -> bool:
    """The recording dot's phase: on for the first half of every wall-clock second."""
    return (view.now % 1.0) < 0.5


def format_elapsed(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"
