"""The 1-bit size class (SSD1306/SH1106/SSD1309, 128x64 and smaller): the screens as mode "1" images.

The recording label uses capitals at least 16 px tall on a lit band; the dot beside it blinks at 1 Hz
(phase from ``view.now``), the label never does. The live mirror is dithered (:mod:`ui.dither`).
While the pre-event ring fills, standby and mirror carry a lit VORAUFNAHME tag (:func:`_lit_tag`, the
style of the mirror's VIDEO label).

No clocks, no globals, no I/O: the same view gives the same pixels (the golden tests rely on it).
Layout adapts to the configured size; 128x64 is the reference.
"""

from __future__ import annotations

from PIL import Image, ImageDraw

from . import fonts, icons
from .dither import mirror_image
from .layout import ALERT, IDENTIFY, MIRROR, RECORDING, ScreenSpec, blink_on, format_elapsed, screen_for
from .picture import luma_of
from .text import alert_text, strings
from .view import OfficerView

_BIG = (20, 18, 16, 14, 12)  # bold sizes for the one big word; 20 gives 16 px capitals
_TITLE = (14, 13, 12, 11, 10)
_SMALL = (12, 11, 10)
_DOT_GAP = 3


def render_mono(view: OfficerView, spec: ScreenSpec) -> Image.Image:
    """The frame for ``view``: a mode "1" image of ``spec.width`` x ``spec.height``."""
    image = Image.new("1", (spec.width, spec.height), 0)
    text = strings(view.language)
    screen = screen_for(view)
    if screen == IDENTIFY:
        _identify(image, view, text)
    elif screen == ALERT:
        _alert(image, view, text)
    elif screen == RECORDING:
        _recording(image, view, text, spec)
    elif screen == MIRROR:
        _mirror(image, view, text, spec)
    else:
        _standby(image, view, text)
    return image


# -- helpers ------------------------------------------------------------------------------------------
def _fit(text: str, max_width: int, sizes, bold: bool = False) -> fonts.Label:
    """The largest of ``sizes`` at which ``text`` fits ``max_width`` (the smallest if none does)."""
    for size in sizes:
        lab = fonts.label(text, size, bold)
        if lab.width <= max_width:
            return lab
    return lab


def _paste(image: Image.Image, lab: fonts.Label, x: int, cap_y: int, fill: int = 1) -> None:
    if lab.width:
        image.paste(fill, (x, cap_y - lab.cap_dy), lab.mask)


def _picture(image: Image.Image, view: OfficerView, text, spec: ScreenSpec, box: tuple[int, int, int, int]) -> None:
    """The live mirror into ``box`` (x0, y0, x1, y1 exclusive), or "no picture" when there is none."""
    x0, y0, x1, y1 = box
    if x1 - x0 < 8 or y1 - y0 < 8:  # a tiny display: the recording mark is all there is room for
        return
    if view.preview is None:
        lab = _fit(text["no_picture"], x1 - x0 - 4, _SMALL)
        _paste(image, lab, x0 + (x1 - x0 - lab.width) // 2, y0 + (y1 - y0 - lab.cap_height) // 2)
        return
    image.paste(mirror_image(luma_of(view.preview), x1 - x0, y1 - y0, spec.mirror_flip, spec.dither), (x0, y0))


def _tag(image: Image.Image, lab: fonts.Label, right: int, bottom: int) -> None:
    """A label in a dark box with a 2-px margin, anchored at the bottom-right corner (over the mirror)."""
    draw = ImageDraw.Draw(image)
    w, h = lab.width + 4, lab.cap_height + 4
    draw.rectangle((right - w, bottom - h, right - 1, bottom - 1), fill=0)
    _paste(image, lab, right - w + 2, bottom - h + 2)


def _lit_tag(image: Image.Image, lab: fonts.Label, x: int, y: int) -> tuple[int, int]:
    """A label in dark ink on a lit box with a dark rim, top-left at (x, y); returns the box's size."""
    draw = ImageDraw.Draw(image)
    box_w, box_h = lab.width + 6, lab.cap_height + 6
    draw.rectangle((x - 1, y - 1, x + box_w, y + box_h), fill=0)  # the rim stands it off the picture
    draw.rectangle((x, y, x + box_w - 1, y + box_h - 1), fill=1)
    _paste(image, lab, x + 3, y + 3, fill=0)
    return box_w, box_h


def _recording_mark(image: Image.Image, view: OfficerView, text, top: int, height: int, lit: bool) -> None:
    """Dot and label centred in a band ``height`` rows tall at ``top``; ``lit``: dark ink on a lit band."""
    draw = ImageDraw.Draw(image)
    width = image.width
    ink, ground = (0, 1) if lit else (1, 0)
    draw.rectangle((0, top, width - 1, top + height - 1), fill=ground)
    # The label gets the width it needs for 16-px capitals; the dot takes what is left (at least 6 px).
    lab = _fit(text["recording"], width - 2 - 6 - _DOT_GAP, _BIG, bold=True)
    dot = min(height - 8, width - 2 - _DOT_GAP - lab.width)
    group = lab.width + (dot + _DOT_GAP if dot >= 6 else 0)
    x = (width - group) // 2
    if dot >= 6:
        y = top + (height - dot) // 2
        if blink_on(view):
            draw.ellipse((x, y, x + dot - 1, y + dot - 1), fill=ink)
        else:
            draw.ellipse((x, y, x + dot - 1, y + dot - 1), outline=ink)
        x += dot + _DOT_GAP
    _paste(image, lab, x, top + (height - lab.cap_height) // 2, fill=ink)


def status_row(image: Image.Image, view: OfficerView, y: int, dx: int = 0) -> None:
    """Battery (with percent) on the left; link, upload backlog and storage on the right."""
    x = 1 + dx
    x += icons.battery(image, x, y, view.battery_percent, view.charging) + 3
    if view.battery_percent is not None:
        fonts.draw(image, (x, y + 1), f"{view.battery_percent}%", icons.SMALL_FONT)
    right = image.width - 1 + dx
    right -= icons.storage(image, right - 8, y, view.storage_level, view.storage_used) + 4
    if view.backlog_segments > 0:
        right -= icons.backlog(image, right - icons.backlog_width(view.backlog_segments), y,
                               view.backlog_segments) + 4
    if view.link_up is not None:
        icons.link(image, right - 11, y, view.link_up)


# -- the screens --------------------------------------------------------------------------------------
def officer_text(view: OfficerView, text) -> str | None:
    """The check-out line of the standby screen: a note ("nicht zugeordnet", or for a few seconds "Ausweis
    unbekannt" even while someone is assigned), else the officer's short code; None without check-out."""
    if view.officer_note:
        return text[view.officer_note]
    return view.officer


def _standby(image: Image.Image, view: OfficerView, text) -> None:
    # Shift everything by a pixel every few minutes: a static screen for hours burns into an OLED.
    dx, dy = ((0, 0), (1, 0), (1, 1), (0, 1))[int(view.now // 300) % 4]
    w, h = image.size
    status_row(image, view, dy, dx)
    word = _fit(text["ready"], w - 4, _BIG, bold=True)
    who = officer_text(view, text)
    if who is not None and not view.pre_recording:  # officer check-out: the clock moves up beside the officer
        _standby_with_officer(image, view, word, who, dx, dy)
        return
    clock = _fit(view.clock, w - 4, (16, 14, 12))
    free = h - icons.ICON_HEIGHT - 2
    if view.pre_recording:  # BEREIT and the clock share the line above the tag (and the officer's code)
        tag = _fit(text["pre_recording"], w - 8, _SMALL)
        who_label = None if who is None else _fit(who, w - 4, (12, 11, 10))
        beside = who_label is not None and who_label.width + tag.width + 14 <= w  # a short code fits beside
        tag_h = tag.cap_height + 6
        word = _fit(text["ready"], w - 10 - clock.width, (16, 14, 12), bold=True)
        top = icons.ICON_HEIGHT + 2 + dy
        line = max(word.cap_height, clock.cap_height)
        stacked = who_label.cap_height if who_label is not None and not beside else 0
        gap = max(1, (free - line - tag_h - stacked) // (4 if stacked else 3))
        space = (w - word.width - clock.width) // 3
        _paste(image, word, space + dx, top + gap + line - word.cap_height)
        _paste(image, clock, w - space - clock.width + dx, top + gap + line - clock.cap_height)
        y = top + gap + line + gap
        if who_label is None:
            _lit_tag(image, tag, (w - tag.width - 6) // 2 + dx, y)
        elif beside:  # the officer's code on the left, the tag on the right
            space = (w - who_label.width - tag.width - 6) // 3
            _paste(image, who_label, space + dx, y + 3 + tag.cap_height - who_label.cap_height)
            _lit_tag(image, tag, w - space - tag.width - 6 + dx, y)
        else:  # a note ("nicht zugeordnet") takes its own line above the tag
            _paste(image, who_label, (w - who_label.width) // 2 + dx, y)
            _lit_tag(image, tag, (w - tag.width - 6) // 2 + dx, y + who_label.cap_height + gap)
        return
    gap = max(2, (free - word.cap_height - clock.cap_height) // 3)
    y = icons.ICON_HEIGHT + 2 + gap + dy
    _paste(image, word, (w - word.width) // 2 + dx, y)
    _paste(image, clock, (w - clock.width) // 2 + dx, y + word.cap_height + gap)


def _standby_with_officer(image: Image.Image, view: OfficerView, word: fonts.Label, who: str, dx: int, dy: int) -> None:
    """BEREIT, then the clock, then who carries the device: the officer's code, or the note in its place."""
    w, h = image.size
    clock = _fit(view.clock, w - 4, (14, 12))
    line = _fit(who, w - 4, (14, 13, 12, 11, 10))
    free = h - icons.ICON_HEIGHT - 2
    gap = max(2, (free - word.cap_height - clock.cap_height - line.cap_height) // 4)
    y = icons.ICON_HEIGHT + 2 + gap + dy
    for lab in (word, clock, line):
        _paste(image, lab, (w - lab.width) // 2 + dx, y)
        y += lab.cap_height + gap


def _mirror(image: Image.Image, view: OfficerView, text, spec: ScreenSpec) -> None:
    w, h = image.size
    _picture(image, view, text, spec, (0, 0, w, h))
    lab = _fit(text["mirror"], w // 2, _TITLE)
    draw = ImageDraw.Draw(image)
    box_w, box_h = lab.width + 6, lab.cap_height + 6
    draw.rectangle((0, 0, box_w, box_h), fill=0)  # a dark rim so the label stands off the picture
    draw.rectangle((0, 0, box_w - 1, box_h - 1), fill=1)
    _paste(image, lab, 3, 3, fill=0)
    if view.pre_recording:  # bottom right, where the recording screen keeps its elapsed time
        tag = _fit(text["pre_recording"], w - 8, _SMALL)
        _lit_tag(image, tag, w - tag.width - 6, h - tag.cap_height - 6)


def _recording(image: Image.Image, view: OfficerView, text, spec: ScreenSpec) -> None:
    w, h = image.size
    band = fonts.label(text["recording"], _BIG[0], True).cap_height + 6
    _recording_mark(image, view, text, 0, band, lit=True)
    _picture(image, view, text, spec, (0, band, w, h))
    _tag(image, _fit(format_elapsed(view.elapsed_seconds), w // 2, _SMALL), w, h)
    if view.sound:
        _microphone_tag(image, h)


def _microphone_tag(image: Image.Image, bottom: int) -> None:
    """The microphone mark at the bottom left, on a dark box like the elapsed time: sound is recorded."""
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, bottom - icons.ICON_HEIGHT - 4, 7 + 3, bottom - 1), fill=0)
    icons.microphone(image, 2, bottom - icons.ICON_HEIGHT - 2)


def _alert(image: Image.Image, view: OfficerView, text) -> None:
    w, h = image.size
    draw = ImageDraw.Draw(image)
    title_text, hint_text = alert_text(view.alerts[0], view.language)
    recording = view.state.recording
    title = _fit(title_text, w - 22, _TITLE)  # room for the warning triangle
    title_h = title.cap_height + 8
    # Title on a lit band, led by a warning triangle.
    draw.rectangle((0, 0, w - 1, title_h - 1), fill=1)
    tri = title.cap_height + 2
    tx, ty = 3, (title_h - tri) // 2
    draw.polygon([(tx + tri // 2, ty), (tx + tri - 1, ty + tri - 1), (tx, ty + tri - 1)], fill=0)
    draw.line((tx + tri // 2, ty + 3, tx + tri // 2, ty + tri - 4), fill=1)
    draw.point((tx + tri // 2, ty + tri - 2), fill=1)
    _paste(image, title, tx + tri + 3 + (w - tx - tri - 3 - title.width) // 2 - 1, (title_h - title.cap_height) // 2,
           fill=0)
    hint = _fit(hint_text, w - 4, _SMALL)
    more = len(view.alerts) - 1
    if recording:
        band = fonts.label(text["recording"], _BIG[0], True).cap_height + 6
        rest = h - title_h - band
        _paste(image, hint, (w - hint.width) // 2, title_h + (rest - hint.cap_height) // 2)
        _recording_mark(image, view, text, h - band, band, lit=False)
        draw.line((0, h - band, w - 1, h - band), fill=1)
        return
    _paste(image, hint, (w - hint.width) // 2, title_h + 5)
    bottom = h - icons.ICON_HEIGHT - 1
    status_row(image, view, bottom)
    if more > 0:
        lab = fonts.label(text["alert.more"].format(n=more), icons.SMALL_FONT)
        _paste(image, lab, (w - lab.width) // 2, title_h + 5 + hint.cap_height + 5)


def _identify(image: Image.Image, view: OfficerView, text) -> None:
    """The device's id, big, the whole screen inverting at 1 Hz: easy to spot in a drawer of devices."""
    w, h = image.size
    title = _fit(text["identify"], w - 4, _SMALL)
    lines = _id_lines(view.identify, w - 4)
    line_gap = 3
    body = sum(lab.cap_height for lab in lines) + line_gap * (len(lines) - 1)
    gap = max(2, (h - title.cap_height - body) // 3)
    lit = blink_on(view)
    if lit:
        ImageDraw.Draw(image).rectangle((0, 0, w - 1, h - 1), fill=1)
    ink = 0 if lit else 1
    _paste(image, title, (w - title.width) // 2, gap, fill=ink)
    y = gap + title.cap_height + gap
    for lab in lines:
        _paste(image, lab, (w - lab.width) // 2, y, fill=ink)
        y += lab.cap_height + line_gap


def _id_lines(device_id: str, width: int) -> list[fonts.Label]:
    """The id as big as it fits on one line; a long one in two lines split at a hyphen near the middle."""
    one = _fit(device_id, width, _BIG + (11, 10), bold=True)
    if one.width <= width:
        return [one]
    cuts = [i for i, c in enumerate(device_id) if c in "-_"] or [len(device_id) // 2]
    cut = min(cuts, key=lambda i: abs(i - len(device_id) / 2))
    if device_id[cut] in "-_":
        head, tail = device_id[:cut + 1], device_id[cut + 1:]  # the hyphen stays at the end of the first line
    else:
        head, tail = device_id[:cut], device_id[cut:]
    return [_fit(part, width, (12, 11, 10, 9, 8)) for part in (head, tail)]
