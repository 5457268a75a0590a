"""Every screen in both languages against golden PNGs, and the properties a citizen relies on."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image, ImageChops

from agent.alerts import derive_alerts
from ui import fonts
from ui.screens import ALERT, IDENTIFY, MIRROR, RECORDING, RECORDING_CAP_MIN, STANDBY, ScreenSpec, render, screen_for
from ui.state import OfficerState
from ui.text import LANGUAGES, alert_text, all_texts, strings
from ui_cases import ALERT_CODES, CASES, NOW, view
from ui_golden import assert_golden, difference, longest_vertical_run


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", list(CASES))
def test_screen_matches_golden_image(name, language, tmp_path):
    image = render(dataclasses.replace(CASES[name], language=language))
    assert image.mode == "1" and image.size == (128, 64)
    assert_golden(image, f"{name}_{language}", tmp_path)


def test_the_golden_comparison_fails_on_a_single_changed_pixel():
    image = render(CASES["recording"])
    image.putpixel((127, 63), 1 - image.getpixel((127, 63)))
    assert "1 pixels differ" in difference(image, "recording_de")


def test_which_screen_shows():
    assert screen_for(view()) == STANDBY
    assert screen_for(view(OfficerState.MIRROR)) == MIRROR
    assert screen_for(view(OfficerState.RECORDING)) == RECORDING
    assert screen_for(view(OfficerState.FINISHING)) == RECORDING
    assert screen_for(view(OfficerState.MIRROR, alerts=("low_battery",))) == ALERT
    assert screen_for(view(OfficerState.RECORDING, alerts=("low_battery",))) == ALERT
    assert screen_for(view(identify="kod-07", alerts=("low_battery",))) == IDENTIFY
    assert screen_for(view(OfficerState.MIRROR, identify="kod-07")) == IDENTIFY
    assert screen_for(view(OfficerState.RECORDING, identify="kod-07")) == RECORDING  # a recording is never hidden


def test_identify_blinks_the_whole_screen():
    on = np.asarray(render(view(identify="kod-07")))
    off = np.asarray(render(view(identify="kod-07", now=NOW + 0.5)))
    assert on.mean() > 0.6 and off.mean() < 0.4  # lit with dark letters, then dark with lit letters


def _dot_and_label_columns(on: Image.Image, off: Image.Image, rows: range):
    """The blinking dot is where the two phases differ; the label is everything right of it."""
    diff = np.array(ImageChops.logical_xor(on, off))[rows.start:rows.stop]
    dot_cols = np.flatnonzero(diff.any(axis=0))
    assert dot_cols.size, "the recording dot does not blink"
    return dot_cols, dot_cols.max() + 2


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("alerts", [(), ("display_fault",)], ids=["recording", "alert_while_recording"])
def test_recording_label_is_at_least_16_px_tall_and_only_the_dot_blinks(language, alerts):
    on = render(view(OfficerState.RECORDING, alerts=alerts, language=language))
    off = render(view(OfficerState.RECORDING, now=NOW + 0.5, alerts=alerts, language=language))
    rows = range(0, 22) if not alerts else range(64 - 22, 64)
    dot_cols, label_left = _dot_and_label_columns(on, off, rows)
    band = np.array(on)[rows.start:rows.stop, label_left:]
    ground = 1 if not alerts else 0  # the mark sits on a lit band, or lit on a dark one under an alert
    assert longest_vertical_run(band != ground) >= RECORDING_CAP_MIN  # the letters' stems
    assert np.array_equal(np.array(on)[:, label_left:], np.array(off)[:, label_left:])
    assert fonts.label(strings(language)["recording"], 20, True).cap_height >= RECORDING_CAP_MIN


def test_screens_are_pure_functions_of_the_view():
    v = view(OfficerState.RECORDING, alerts=())
    assert render(v).tobytes() == render(v).tobytes()
    assert render(v).tobytes() != render(dataclasses.replace(v, recording_since=NOW - 84)).tobytes()


def test_standby_moves_by_a_pixel_every_five_minutes_against_burn_in():
    frames = {render(view(now=NOW + 300 * i)).tobytes() for i in range(4)}
    assert len(frames) == 4
    assert render(view(now=NOW + 1200)).tobytes() == render(view()).tobytes()


@pytest.mark.parametrize("size", [(128, 32), (128, 128), (64, 128), (96, 16)])
@pytest.mark.parametrize("case", ["standby", "mirror", "recording", "alert_while_recording", "alert_several"])
def test_other_display_sizes_render(size, case):
    image = render(CASES[case], ScreenSpec(*size))
    assert image.size == size and image.getbbox() is not None


def test_bayer_dither_and_unflipped_mirror_render():
    fs = render(CASES["mirror"])
    bayer = render(CASES["mirror"], ScreenSpec(dither="bayer"))
    unflipped = render(CASES["mirror"], ScreenSpec(mirror_flip=False))
    assert len({fs.tobytes(), bayer.tobytes(), unflipped.tobytes()}) == 3


def test_every_text_has_real_glyphs():
    missing = {text: fonts.missing_glyphs(text) for text in all_texts()}
    assert {t: m for t, m in missing.items() if m} == {}
    assert fonts.missing_glyphs("€") == ["€"]  # the check itself can fail


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_alert_text_fits_a_128_px_display(language):
    for code in ALERT_CODES:
        title, hint = alert_text(code, language)
        assert fonts.label(title, 10).width <= 128 - 22, title
        assert fonts.label(hint, 10).width <= 128 - 4, hint


def test_every_alert_the_agent_raises_has_its_own_text():
    status = {"faults": {"camera": "x", "recorder": "x", "sealer": "x", "storage monitor": "x", "audit": "x",
                         "microphone": "x", "nfc": "x", "checkout": "x"},
              "storage": {"level": "critical"}, "overrun_alarm": True, "refused_reason": "full"}
    raised = derive_alerts(status, battery_percent=1.0, cpu_temperature_c=95.0, throttling=["under-voltage"],
                           upload={"state": "refused", "fault": "0x87"}, display_fault="gone")
    raised += derive_alerts({"storage": {"level": "warn"}})
    generic = alert_text("no_such_code")[0]
    for alert in raised:
        for language in LANGUAGES:
            assert alert_text(alert.code, language)[0] != generic, alert.code


def test_standby_shows_the_officer_or_says_nobody_is_assigned():
    """Officer check-out: the assigned officer's short code, or "nicht zugeordnet"; without check-out in use
    the screen is exactly the one it always was."""
    plain, unassigned = render(view()), render(view(officer_note="unassigned"))
    assert render(view(officer="ko-17")).tobytes() not in (plain.tobytes(), unassigned.tobytes())
    assert render(view(officer="ko-18")).tobytes() != render(view(officer="ko-17")).tobytes()
    assert unassigned.tobytes() != render(view(officer_note="unassigned", language="en")).tobytes()
    assert strings("de")["unassigned"] == "nicht zugeordnet"
    recording = view(OfficerState.RECORDING)  # a recording screen never gives room to it
    assert render(dataclasses.replace(recording, officer="ko-17")).tobytes() == render(recording).tobytes()


@pytest.mark.parametrize("state", [OfficerState.STANDBY, OfficerState.MIRROR])
@pytest.mark.parametrize("checkout", [{}, {"officer": "ko-17"}, {"officer_note": "unassigned"}],
                         ids=["no-checkout", "officer", "unassigned"])
def test_pre_recording_adds_its_tag_and_changes_nothing_else_of_the_screen(state, checkout):
    plain = np.asarray(render(view(state, **checkout)))
    tagged = np.asarray(render(view(state, pre_recording=True, **checkout)))
    assert screen_for(view(state, pre_recording=True)) == screen_for(view(state))
    assert (plain != tagged).any()
    if state is OfficerState.MIRROR:  # the tag sits in the bottom right corner, over the picture
        rows, cols = np.nonzero(plain != tagged)
        assert rows.min() >= 64 // 2 and cols.min() >= 128 // 4
