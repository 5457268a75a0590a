"""The grey and colour size classes: the screens laid out for panels bigger than the 128x64 OLED.

Three classes, told apart by the canvas's shape (:func:`metrics`): a wide grey strip (SSD1322/SSD1362,
256x64), a small colour square (SSD1351, 128x128) and a colour TFT (ST7789/ILI9341, 320x240). Every
screen is drawn in RGB and, on a grey panel, converted to luminance at the end, with a palette per
pixel kind: on colour the recording frame and band are red, on grey they are full white against the
black picture rim (red would come out a dull grey).

While recording, every screen (the recording and an alert alike) sits inside the same recording
chrome (:func:`_recording_chrome`): a thick frame in the recording colour and a band with the
blinking dot, "AUFNAHME"/"REC" and, on the wide strip, the elapsed time. No other screen uses that
colour in the frame area (on grey the identify screen's lit phase is a light grey, not white), so the
tests can check the chrome by its pixels. While the pre-event ring fills, standby and mirror carry a
VORAUFNAHME tag in dark letters on the lit (never the recording) colour (:func:`_lit_tag`). On the TFT the label's
capitals are 45 px (8 mm on a 2.8" panel: legible at 2 m); a word too wide at that height is
condensed rather than shrunk.

Text and icons come from the same 1-bit masks as the OLED class (:mod:`ui.fonts`, :mod:`ui.icons`,
scaled by whole pixels), so the pictures are identical wherever the same Pillow runs. A mark every
screen shows (such as a new status icon) goes into :func:`_status_row` or :func:`_recording_chrome`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw

from . import fonts, icons
from .layout import ALERT, GREY, IDENTIFY, MIRROR, RECORDING, ScreenSpec, blink_on, format_elapsed, screen_for
from .picture import picture
from .render_mono import officer_text, status_row
from .text import alert_text, strings
from .view import OfficerView

#: A word may be condensed to this share of its width before a smaller size is taken.
CONDENSE_MIN = 0.75
#: Only capitals this tall or taller are condensed; smaller text takes a smaller size instead.
CONDENSE_CAP_MIN = 14
_BLACK = (0, 0, 0)


@dataclass(frozen=True)
class Palette:
    ink: tuple[int, int, int]  # text on the dark ground
    dim: tuple[int, int, int]  # secondary text
    rec: tuple[int, int, int]  # the recording frame and band
    rec_ink: tuple[int, int, int]  # text on the band
    alert: tuple[int, int, int]  # the alert title band
    alert_ink: tuple[int, int, int]
    lit: tuple[int, int, int]  # the identify screen's lit phase: never the recording colour


COLOUR_PALETTE = Palette(ink=(255, 255, 255), dim=(160, 160, 160), rec=(225, 0, 0), rec_ink=(255, 255, 255),
                         alert=(255, 176, 0), alert_ink=_BLACK, lit=(255, 255, 255))
GREY_PALETTE = Palette(ink=(255, 255, 255), dim=(150, 150, 150), rec=(255, 255, 255), rec_ink=_BLACK,
                       alert=(170, 170, 170), alert_ink=_BLACK, lit=(200, 200, 200))


@dataclass(frozen=True)
class Metrics:
    """Sizes for one class, in pixels; ``*_cap`` are heights of capital letters."""

    wide: bool  # a strip (256x64): the band sits beside the picture, not above it
    icons: int  # scale of the status-row icons
    frame: int  # thickness of the recording frame
    rec_cap: int
    word_cap: int  # BEREIT
    clock_cap: int
    title_cap: int  # alert titles, the identify heading
    hint_cap: int
    tag_cap: int  # VIDEO, the elapsed time over the picture
    id_cap: int


def metrics(width: int, height: int) -> Metrics:
    if width >= 3 * height:  # 256x64 grey strip
        return Metrics(True, 1, 3, 20, 24, 24, 12, 9, 10, 24)
    if width >= 240:  # 320x240 TFT: 45 px capitals are 8 mm on a 2.8" panel
        return Metrics(False, 2, 8, 45, 45, 36, 24, 16, 24, 40)
    return Metrics(False, 1, 4, 16, 22, 16, 11, 9, 9, 18)  # 128x128 colour OLED


def render_panel(view: OfficerView, spec: ScreenSpec) -> Image.Image:
    """The frame for ``view``: RGB (colour) or L (grey) at ``spec.width`` x ``spec.height``."""
    image = Image.new("RGB", (spec.width, spec.height), _BLACK)
    pal = GREY_PALETTE if spec.mode == GREY else COLOUR_PALETTE
    m = metrics(spec.width, spec.height)
    text = strings(view.language)
    screen = screen_for(view)
    if screen == IDENTIFY:
        _identify(image, view, text, m, pal)
    elif screen == ALERT:
        _alert(image, view, text, m, pal)
    elif screen == RECORDING:
        _recording(image, view, text, spec, m, pal)
    elif screen == MIRROR:
        _mirror(image, view, text, spec, m, pal)
    else:
        _standby(image, view, text, m, pal)
    return image.convert("L") if spec.mode == GREY else image


# -- text ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _size_for_cap(cap: int, bold: bool) -> int:
    """The smallest font size whose capitals are at least ``cap`` pixels tall."""
    size = max(6, cap)
    while fonts.label("H", size, bold).cap_height < cap:
        size += 1
    return size


@lru_cache(maxsize=512)
def _text(text: str, cap: int, max_width: int, bold: bool = False) -> fonts.Label:
    """``text`` with capitals ``cap`` tall, condensed (down to CONDENSE_MIN) or made smaller to fit."""
    size = _size_for_cap(cap, bold)
    lab = fonts.label(text, size, bold)
    condense = CONDENSE_MIN if cap >= CONDENSE_CAP_MIN else 1.0  # small letters condensed lose their shapes
    while lab.width * condense > max_width and size > 8:
        size -= 1
        lab = fonts.label(text, size, bold)
    if lab.width <= max_width:
        return lab
    return fonts.Label(lab.mask.resize((max(1, max_width), lab.height), Image.Resampling.NEAREST),
                       lab.cap_dy, lab.cap_height)


def _paste(image: Image.Image, lab: fonts.Label, x: int, cap_y: int, colour) -> None:
    if lab.width:
        image.paste(colour, (x, cap_y - lab.cap_dy), lab.mask)


def _centred(image: Image.Image, lab: fonts.Label, box, colour) -> None:
    x0, y0, x1, y1 = box
    _paste(image, lab, x0 + (x1 - x0 - lab.width) // 2, y0 + (y1 - y0 - lab.cap_height) // 2, colour)


def _tag(image: Image.Image, lab: fonts.Label, x: int, y: int, pal: Palette, pad: int) -> None:
    """A label in a dark box with its top-left corner at (x, y) (over the picture)."""
    ImageDraw.Draw(image).rectangle((x, y, x + lab.width + 2 * pad - 1, y + lab.cap_height + 2 * pad - 1),
                                    fill=_BLACK)
    _paste(image, lab, x + pad, y + pad, pal.ink)


def _lit_tag(image: Image.Image, lab: fonts.Label, box, pal: Palette, pad: int) -> None:
    """A label in dark letters on a box of the lit colour, centred in ``box`` (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    w, h = lab.width + 2 * pad, lab.cap_height + 2 * pad
    x, y = x0 + (x1 - x0 - w) // 2, y0 + (y1 - y0 - h) // 2
    ImageDraw.Draw(image).rectangle((x, y, x + w - 1, y + h - 1), fill=pal.lit)
    _paste(image, lab, x + pad, y + pad, _BLACK)


# -- parts --------------------------------------------------------------------------------------------
def _status_row(image: Image.Image, view: OfficerView, y: int, m: Metrics, pal: Palette, dx: int = 0) -> int:
    """The OLED's status row (battery, link, backlog, storage), scaled by whole pixels; returns its height."""
    row = Image.new("1", (image.width // m.icons, icons.ICON_HEIGHT), 0)
    status_row(row, view, 0)
    if m.icons > 1:
        row = row.resize((row.width * m.icons, row.height * m.icons), Image.Resampling.NEAREST)
    image.paste(pal.ink, (dx, y), row)
    return row.height


def _picture(image: Image.Image, view: OfficerView, text, spec: ScreenSpec, box, m: Metrics, pal: Palette) -> None:
    """The live mirror into ``box`` (x0, y0, x1, y1 exclusive), or "no picture" when there is none."""
    x0, y0, x1, y1 = box
    if view.preview is None:
        _centred(image, _text(text["no_picture"], m.hint_cap, x1 - x0 - 4), box, pal.dim)
        return
    image.paste(picture(view.preview, x1 - x0, y1 - y0, spec.mirror_flip, spec.mode != GREY), (x0, y0))


def mirror_box(width: int, height: int) -> tuple[int, int, int, int]:
    """Where the mirror screen puts the picture: the largest 16:9 box, centred.

    The person sees all the camera sees (what will be recorded), and nothing of it is cut off: on the
    wide strip at full height, on the square and the TFT at full width.
    """
    pw, ph = min(width, round(height * 16 / 9)), min(height, round(width * 9 / 16))
    x0, y0 = (width - pw) // 2, (height - ph) // 2
    return x0, y0, x0 + pw, y0 + ph


def chrome_boxes(width: int, height: int) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
    """(inner, band) of the recording chrome: the dark box left for the content, and the band's box.

    Everything outside ``inner`` is the recording colour except the dot and the label. The band is
    above the content, or on the wide strip beside it (with the elapsed time under the label).
    """
    m = metrics(width, height)
    f = m.frame
    if m.wide:
        inner = (f, f, f + round((height - 2 * f) * 16 / 9), height - f)
        return inner, (inner[2], 0, width, height)
    band_h = m.rec_cap + 2 * f + 4
    return (f, band_h, width - f, height - f), (0, 0, width, band_h)


def _recording_chrome(image: Image.Image, view: OfficerView, text, m: Metrics, pal: Palette) -> tuple[int, int, int, int]:
    """The frame and band every recording screen shows; returns the dark inner box left for the content."""
    w, h = image.size
    inner, band = chrome_boxes(w, h)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, w - 1, h - 1), fill=pal.rec)
    draw.rectangle((inner[0], inner[1], inner[2] - 1, inner[3] - 1), fill=_BLACK)
    bx0, by0, bx1, by1 = band
    dot = round(m.rec_cap * 0.7)
    gap = max(3, dot // 3)
    margin = m.frame + 2 if not m.wide else gap
    lab = _text(text["recording"], m.rec_cap, bx1 - bx0 - 2 * margin - dot - gap, bold=True)
    group = dot + gap + lab.width
    x = bx0 + (bx1 - bx0 - group) // 2
    if m.wide:
        clock = _text(format_elapsed(view.elapsed_seconds), m.clock_cap * 2 // 3, bx1 - bx0 - 2 * margin)
        spacing = (by1 - by0 - lab.cap_height - clock.cap_height) // 3
        cap_y = by0 + spacing
        _paste(image, clock, bx0 + (bx1 - bx0 - clock.width) // 2, cap_y + lab.cap_height + spacing, pal.rec_ink)
    else:
        cap_y = by0 + (by1 - by0 - lab.cap_height) // 2
    dot_y = cap_y + (lab.cap_height - dot) // 2
    if blink_on(view):
        draw.ellipse((x, dot_y, x + dot - 1, dot_y + dot - 1), fill=pal.rec_ink)
    else:
        draw.ellipse((x, dot_y, x + dot - 1, dot_y + dot - 1), outline=pal.rec_ink, width=max(1, dot // 8))
    _paste(image, lab, x + dot + gap, cap_y, pal.rec_ink)
    return inner


# -- the screens --------------------------------------------------------------------------------------
def _standby(image: Image.Image, view: OfficerView, text, m: Metrics, pal: Palette) -> None:
    # Shift everything by a pixel every few minutes: a static screen for hours burns into an OLED.
    dx, dy = ((0, 0), (1, 0), (1, 1), (0, 1))[int(view.now // 300) % 4]
    w, h = image.size
    top = _status_row(image, view, dy, m, pal, dx) + 2
    who = officer_text(view, text)
    if view.pre_recording:  # the tag takes the bottom; BEREIT and the clock what is left above it
        pad = max(2, m.hint_cap // 4)
        tag = _text(text["pre_recording"], m.hint_cap, w - 4 * pad)
        tag_h = tag.cap_height + 2 * pad
        _lit_tag(image, tag, (dx, h - tag_h - 2 * pad + dy, w + dx, h - pad + dy), pal, pad)
        h -= tag_h + 2 * pad
    if m.wide:
        word = _text(text["ready"], m.word_cap, w // 2 - 8, bold=True)
        _centred(image, word, (dx, top + dy, w // 2 + dx, h + dy), pal.ink)
        if who is None:
            _centred(image, _text(view.clock, m.clock_cap, w // 2 - 8), (w // 2 + dx, top + dy, w + dx, h + dy),
                     pal.ink)
            return
        # Officer check-out: the clock and who carries the device share the right half.
        clock = _text(view.clock, m.clock_cap * 2 // 3, w // 2 - 8)
        line = _text(who, m.hint_cap, w // 2 - 8)
        gap = max(2, (h - top - clock.cap_height - line.cap_height) // 3)
        y = top + gap + dy
        _paste(image, clock, w // 2 + (w // 2 - clock.width) // 2 + dx, y, pal.ink)
        _paste(image, line, w // 2 + (w // 2 - line.width) // 2 + dx, y + clock.cap_height + gap, pal.ink)
        return
    word = _text(text["ready"], m.word_cap, w - 8, bold=True)
    clock = _text(view.clock, m.clock_cap if who is None else m.clock_cap * 3 // 4, w - 8)
    lines = [(word, pal.ink), (clock, pal.dim)] + ([(_text(who, m.hint_cap, w - 8), pal.ink)] if who else [])
    gap = max(2, (h - top - sum(lab.cap_height for lab, _ in lines)) // (len(lines) + 1))
    y = top + gap + dy
    for lab, colour in lines:
        _paste(image, lab, (w - lab.width) // 2 + dx, y, colour)
        y += lab.cap_height + gap


def _mirror(image: Image.Image, view: OfficerView, text, spec: ScreenSpec, m: Metrics, pal: Palette) -> None:
    w, h = image.size
    box = mirror_box(w, h)
    _picture(image, view, text, spec, box, m, pal)
    if m.wide:  # VIDEO beside the picture
        lab = _text(text["mirror"], m.tag_cap, box[0] - 4)
        _paste(image, lab, (box[0] - lab.width) // 2, (h - lab.cap_height) // 2, pal.dim)
    else:  # VIDEO in the bar above it
        lab = _text(text["mirror"], min(m.tag_cap, box[1] - 4), w // 2)
        _paste(image, lab, max(2, box[1] - lab.cap_height) // 2, (box[1] - lab.cap_height) // 2, pal.dim)
    if view.pre_recording:  # on the strip over the picture's foot (beside it is too narrow), else below it
        pad = max(2, m.tag_cap // 6)
        if m.wide:
            tag = _text(text["pre_recording"], m.tag_cap, box[2] - box[0] - 2 * pad - 4)
            tag_h = tag.cap_height + 2 * pad
            _lit_tag(image, tag, (box[0], box[3] - tag_h - 2, box[2], box[3] - 2), pal, pad)
        else:
            tag = _text(text["pre_recording"], min(m.tag_cap, h - box[3] - 2 * pad - 2), w - 2 * pad - 4)
            _lit_tag(image, tag, (0, box[3], w, h), pal, pad)


def _recording(image: Image.Image, view: OfficerView, text, spec: ScreenSpec, m: Metrics, pal: Palette) -> None:
    inner = _recording_chrome(image, view, text, m, pal)
    x0, y0, x1, y1 = inner
    _picture(image, view, text, spec, (x0 + 1, y0 + 1, x1 - 1, y1 - 1), m, pal)  # a black rim against the frame
    if not m.wide:
        lab = _text(format_elapsed(view.elapsed_seconds), m.tag_cap, (x1 - x0) // 2)
        pad = max(2, m.tag_cap // 4)
        _tag(image, lab, x1 - lab.width - 2 * pad, y1 - lab.cap_height - 2 * pad, pal, pad)
    if view.sound:
        _microphone_tag(image, x0 + 1, y1 - 1, m, pal)


def _microphone_tag(image: Image.Image, left: int, bottom: int, m: Metrics, pal: Palette) -> None:
    """The 1-bit class's microphone mark, scaled like the status row, at the picture's bottom left on a dark
    box: sound is recorded."""
    mark = Image.new("1", (7, icons.ICON_HEIGHT), 0)
    icons.microphone(mark, 0, 0)
    if m.icons > 1:
        mark = mark.resize((mark.width * m.icons, mark.height * m.icons), Image.Resampling.NEAREST)
    pad = max(2, m.icons)
    top = bottom - mark.height - 2 * pad
    ImageDraw.Draw(image).rectangle((left, top, left + mark.width + 2 * pad - 1, bottom - 1), fill=_BLACK)
    image.paste(pal.ink, (left + pad, top + pad), mark)


def _alert(image: Image.Image, view: OfficerView, text, m: Metrics, pal: Palette) -> None:
    w, h = image.size
    box = _recording_chrome(image, view, text, m, pal) if view.state.recording else (0, 0, w, h)
    x0, y0, x1, y1 = box
    draw = ImageDraw.Draw(image)
    title_text, hint_text = alert_text(view.alerts[0], view.language)
    pad = max(3, m.title_cap // 3)
    title = _text(title_text, m.title_cap, x1 - x0 - m.title_cap - 2 - 3 * pad)
    tri = title.cap_height + 2  # the warning triangle as tall as the title's capitals
    title_h = title.cap_height + 2 * pad
    draw.rectangle((x0, y0, x1 - 1, y0 + title_h - 1), fill=pal.alert)
    tx, ty = x0 + pad, y0 + (title_h - tri) // 2
    draw.polygon([(tx + tri // 2, ty), (tx + tri - 1, ty + tri - 1), (tx, ty + tri - 1)], fill=pal.alert_ink)
    stem = max(1, tri // 8)
    draw.rectangle((tx + tri // 2 - stem // 2, ty + tri // 4, tx + tri // 2 - stem // 2 + stem - 1, ty + tri * 2 // 3),
                   fill=pal.alert)
    draw.rectangle((tx + tri // 2 - stem // 2, ty + tri - 2 - stem, tx + tri // 2 - stem // 2 + stem - 1, ty + tri - 3),
                   fill=pal.alert)
    left = tx + tri + pad
    _paste(image, title, left + (x1 - left - title.width) // 2, y0 + pad, pal.alert_ink)
    bottom = y1
    if not view.state.recording:
        bottom = h - icons.ICON_HEIGHT * m.icons - 2
        _status_row(image, view, bottom, m, pal)
    hint = _text(hint_text, m.hint_cap, x1 - x0 - 6)
    more = len(view.alerts) - 1
    rest = bottom - y0 - title_h
    if more > 0 and not view.state.recording:
        extra = _text(text["alert.more"].format(n=more), m.hint_cap * 3 // 4, x1 - x0 - 6)
        gap = max(2, (rest - hint.cap_height - extra.cap_height) // 3)
        y = y0 + title_h + gap
        _paste(image, hint, x0 + (x1 - x0 - hint.width) // 2, y, pal.ink)
        _paste(image, extra, x0 + (x1 - x0 - extra.width) // 2, y + hint.cap_height + gap, pal.dim)
        return
    _paste(image, hint, x0 + (x1 - x0 - hint.width) // 2, y0 + title_h + (rest - hint.cap_height) // 2, pal.ink)


def _identify(image: Image.Image, view: OfficerView, text, m: Metrics, pal: Palette) -> None:
    """The device's id, big, the whole screen inverting at 1 Hz: easy to spot in a drawer of devices."""
    w, h = image.size
    lit = blink_on(view)
    if lit:
        ImageDraw.Draw(image).rectangle((0, 0, w - 1, h - 1), fill=pal.lit)
    ink = _BLACK if lit else pal.ink
    title = _text(text["identify"], m.title_cap * 2 // 3, w - 8)
    lines = _id_lines(view.identify, w - 8, m.id_cap)
    line_gap = max(3, m.id_cap // 5)
    body = sum(lab.cap_height for lab in lines) + line_gap * (len(lines) - 1)
    gap = max(2, (h - title.cap_height - body) // 3)
    _paste(image, title, (w - title.width) // 2, gap, ink)
    y = gap + title.cap_height + gap
    for lab in lines:
        _paste(image, lab, (w - lab.width) // 2, y, ink)
        y += lab.cap_height + line_gap


def _id_lines(device_id: str, width: int, cap: int) -> list[fonts.Label]:
    """The id on one line when it fits at two thirds of ``cap``; else two lines split at a hyphen near the middle."""
    one = _text(device_id, cap, width, bold=True)
    if one.cap_height >= cap * 2 // 3:
        return [one]
    cuts = [i for i, c in enumerate(device_id) if c in "-_"] or [len(device_id) // 2]
    cut = min(cuts, key=lambda i: abs(i - len(device_id) / 2))
    if device_id[cut] in "-_":
        head, tail = device_id[:cut + 1], device_id[cut + 1:]
    else:
        head, tail = device_id[:cut], device_id[cut:]
    return [_text(part, cap // 2, width) for part in (head, tail)]
