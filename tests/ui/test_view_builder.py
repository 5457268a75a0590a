"""The view snapshot and the mirror picture: what the runtime hands the display, and what becomes of it."""

from __future__ import annotations

import numpy as np
import pytest

from ui.dither import crop_box, dither, fit, mirror_image, stretch
from ui.state import OfficerAssignment, OfficerState, OfficerStatus, Storage, StorageLevel
from ui.view import Health, OfficerView, ViewBuilder

NOW = 1_700_000_000.0


def status(state=OfficerState.STANDBY, since=None):
    return OfficerStatus(state, recording_since=since)


def test_builder_folds_the_runtime_facts_into_one_view():
    disk = Storage(StorageLevel.WARN, used=0.9)
    preview = np.zeros((72, 128), np.uint8)
    builder = ViewBuilder(lambda: status(OfficerState.RECORDING, since=NOW - 65), preview=lambda: preview,
                          disk=lambda: disk, health=lambda: Health(battery_percent=40, link_up=False,
                                                                   backlog_segments=7),
                          alerts=lambda: ["storage_low"], language="en",
                          wall_clock=lambda: NOW, local_clock=lambda t: "12:34")
    view = builder()
    assert (view.state, view.clock, view.elapsed_seconds, view.language) == (OfficerState.RECORDING, "12:34", 65, "en")
    assert view.preview is preview and view.storage_level is StorageLevel.WARN
    assert view.storage_used == pytest.approx(0.9)
    assert (view.battery_percent, view.link_up, view.backlog_segments) == (40, False, 7)
    assert view.alerts == ("storage_low",)


def test_standby_never_touches_the_camera_preview():
    def preview():
        raise AssertionError("read in standby")

    view = ViewBuilder(lambda: status(), preview=preview)()
    assert view.preview is None and view.state is OfficerState.STANDBY


def test_a_failing_source_is_unknown_and_logged_once(caplog):
    def broken():
        raise OSError("gauge unplugged")

    builder = ViewBuilder(lambda: status(), health=broken, disk=broken)
    for _ in range(3):
        view = builder()
    assert view.battery_percent is None and view.storage_level is None
    messages = [r.message for r in caplog.records]
    assert sum("'health' failed" in m for m in messages) == 1 and sum("'disk' failed" in m for m in messages) == 1


@pytest.mark.parametrize("assignment, officer, note", [
    (None, None, None),  # check-out not in use: nothing about it on the display
    (OfficerAssignment("ko-17"), "ko-17", None),
    (OfficerAssignment(None), None, "unassigned"),
    (OfficerAssignment(None, "badge_unknown"), None, "badge_unknown"),
    (OfficerAssignment("ko-17", "badge_unknown"), "ko-17", "badge_unknown"),
])
def test_the_assignment_becomes_the_officer_or_a_note(assignment, officer, note):
    view = ViewBuilder(lambda: status(), assignment=lambda: assignment)()
    assert (view.officer, view.officer_note) == (officer, note)


def test_no_recorder_yet_reads_as_standby():
    assert ViewBuilder(lambda: None)().state is OfficerState.STANDBY


def test_elapsed_time_only_while_recording():
    assert OfficerView(OfficerState.MIRROR, now=NOW, clock="", recording_since=NOW - 5).elapsed_seconds == 0
    assert OfficerView(OfficerState.FINISHING, now=NOW, clock="", recording_since=NOW - 5.9).elapsed_seconds == 5


def test_mirror_from_a_1080p_plane_keeps_the_centre_and_flips():
    plane = np.zeros((1080, 1920), np.uint8)
    plane[:, :960] = 255  # left half bright
    out = fit(plane, 128, 64)
    assert out.shape == (64, 128)
    assert out[:, :60].mean() < 10 and out[:, 68:].mean() > 245  # bright left half is on the right: a mirror
    assert fit(plane, 128, 64, flip=False)[:, :60].mean() > 245
    assert crop_box(1920, 1080, 128, 64) == (0, 60, 1920, 1020)
    assert crop_box(100, 100, 128, 64) == (0, 25, 100, 75)


def test_contrast_stretch_spreads_a_dull_scene_but_not_sensor_noise():
    rng = np.random.default_rng(1)
    dull = rng.integers(90, 160, (64, 128), dtype=np.uint8)
    assert stretch(dull).min() == 0 and stretch(dull).max() == 255
    flat = rng.integers(118, 122, (64, 128), dtype=np.uint8)
    assert 60 < stretch(flat).mean() < 200 and stretch(flat).std() < 30


@pytest.mark.parametrize("method", ["floyd-steinberg", "bayer"])
def test_dither_keeps_the_grey_level(method):
    gray = np.full((64, 128), 64, np.uint8)
    image = dither(gray, method)
    assert image.mode == "1" and image.size == (128, 64)
    assert np.asarray(image).mean() == pytest.approx(64 / 255, abs=0.03)


def test_bad_input_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="2-D luma plane"):
        mirror_image(np.zeros((72, 128, 3), np.uint8), 128, 64)
    with pytest.raises(ValueError, match="unknown dither method"):
        dither(np.zeros((4, 4), np.uint8), "atkinson")


@pytest.mark.parametrize("state, shown", [(OfficerState.STANDBY, True), (OfficerState.MIRROR, True),
                                          (OfficerState.RECORDING, False), (OfficerState.FINISHING, False)])
def test_pre_recording_shows_only_outside_a_recording(state, shown):
    builder = ViewBuilder(lambda: OfficerStatus(state, pre_recording=True), wall_clock=lambda: NOW)
    assert builder().pre_recording is shown
    assert ViewBuilder(lambda: OfficerStatus(state), wall_clock=lambda: NOW)().pre_recording is False
