"""The views every screen test renders, shared by the 1-bit and the panel classes' golden tests."""

from __future__ import annotations

from ui.state import OfficerState, StorageLevel
from ui.view import OfficerView
from ui_scene import portrait

NOW = 1_700_000_000.0  # a fixed wall clock: blink phase "on", no burn-in shift
PREVIEW = portrait()
PREVIEW.flags.writeable = False  # a screen that wrote into the camera's preview would raise
ICONS = dict(battery_percent=76, storage_level=StorageLevel.OK, storage_used=0.35, link_up=True,
             backlog_segments=3)
ALERT_CODES = ("camera_fault", "recorder_fault", "storage_full", "storage_low", "frames_dropped",
               "recording_refused", "upload_failing", "overheating", "under_voltage", "low_battery",
               "display_fault", "audio_fault", "checkout_fault", "some_future_code")


def view(state=OfficerState.STANDBY, **kw) -> OfficerView:
    args = dict(now=NOW, clock="09:41", **ICONS)
    if state is not OfficerState.STANDBY:
        args["preview"] = PREVIEW
    if state.recording:
        args["recording_since"] = NOW - 83
    args.update(kw)
    return OfficerView(state, **args)


CASES = {
    "standby": view(),
    "standby_unknowns": view(battery_percent=None, storage_level=None, storage_used=None, link_up=None,
                             backlog_segments=0, clock="23:05"),
    "standby_icons": view(battery_percent=8, charging=True, link_up=False, backlog_segments=1234,
                          storage_level=StorageLevel.WARN, storage_used=0.93),
    # officer check-out: the officer's short code in standby, or "nicht zugeordnet"
    "standby_officer": view(officer="ko-17"),
    "standby_unassigned": view(officer_note="unassigned"),
    "standby_badge_unknown": view(officer_note="badge_unknown", clock="06:58"),
    "mirror": view(OfficerState.MIRROR),
    "mirror_no_picture": view(OfficerState.MIRROR, preview=None),
    "standby_pre_recording": view(pre_recording=True),
    "mirror_pre_recording": view(OfficerState.MIRROR, pre_recording=True),
    "standby_officer_pre_recording": view(officer="ko-17", pre_recording=True),
    "recording": view(OfficerState.RECORDING),
    "recording_dot_off": view(OfficerState.RECORDING, now=NOW + 0.5),
    "recording_finishing_long": view(OfficerState.FINISHING, recording_since=NOW - 3723),
    "recording_no_picture": view(OfficerState.RECORDING, preview=None),
    "recording_with_sound": view(OfficerState.RECORDING, sound=True),
    "recording_with_sound_finishing": view(OfficerState.FINISHING, sound=True, now=NOW + 0.5),
    **{f"alert_{code}": view(alerts=(code,)) for code in ALERT_CODES},
    "alert_several": view(alerts=("storage_low", "upload_failing", "low_battery")),
    "alert_while_recording": view(OfficerState.RECORDING, alerts=("display_fault", "low_battery")),
    "alert_while_recording_dot_off": view(OfficerState.RECORDING, now=NOW + 0.5, alerts=("storage_full",)),
    "identify": view(identify="kod-07", alerts=("low_battery",)),
    "identify_off": view(identify="kod-07", now=NOW + 0.5),
    "identify_long_id": view(identify="duisburg-kod-team-nord-0042"),
}
