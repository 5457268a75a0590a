"""The incident timeline's rows: segments with their pre-event share, missing ones, pauses, a restart's
cut and an unfinished upload, placed on the bar by their share of the incident's span."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from backoffice.web import timeline

T = datetime(2025, 6, 15, 8, 0, tzinfo=timezone.utc)


def seg(index, start_s, end_s, *, frames=300, pre=0, final=False, marker=False):
    return SimpleNamespace(segment_index=index, start=T + timedelta(seconds=start_s), end=T + timedelta(seconds=end_s),
                           frame_count=0 if marker else frames, pre_event_frames=pre, final=final, end_marker=marker)


def incident(start_s, end_s):
    return SimpleNamespace(start=T + timedelta(seconds=start_s), end=T + timedelta(seconds=end_s))


def kinds(rows):
    return [r.kind for r in rows]


def test_continuous_segments_with_a_pre_event_part():
    rows = timeline.build(incident(0, 20), [seg(1, 10, 20, final=True), seg(0, 0, 10, pre=150)])
    assert kinds(rows) == ["segment", "segment"]
    assert rows[0].pre_event == timedelta(seconds=5) and (rows[0].x, rows[0].width, rows[0].pre_width) == (0, 50, 25)
    assert (rows[1].x, rows[1].width) == (50, 50)
    assert timeline.pre_event_total(rows) == timedelta(seconds=5)


def test_missing_segments_are_named_by_index_even_at_the_start():
    rows = timeline.build(incident(0, 40), [seg(1, 10, 20), seg(4, 30, 40, final=True)])
    assert kinds(rows) == ["missing", "segment", "missing", "segment"]
    assert rows[0].indexes == (0,) and rows[2].indexes == (2, 3)
    assert (rows[2].x, rows[2].width) == (50, 25)


def test_a_pause_without_picture_is_a_gap_but_the_cut_between_segments_is_not():
    rows = timeline.build(incident(0, 25), [seg(0, 0, 10), seg(1, 10.2, 15), seg(2, 20, 25, final=True)])
    assert kinds(rows) == ["segment", "segment", "pause", "segment"]
    assert rows[2].duration == timedelta(seconds=5)


def test_a_slow_frame_rate_is_not_mistaken_for_gaps():
    """1 frame per second: the next segment starts a second after the last frame, which is no pause."""
    rows = timeline.build(incident(0, 20), [seg(0, 0, 9, frames=10), seg(1, 10, 19, frames=10),
                                            seg(2, 22, 25, frames=4, final=True)])
    assert kinds(rows) == ["segment", "segment", "pause", "segment"]


def test_a_restart_cut_and_an_open_end():
    rows = timeline.build(incident(0, 20), [seg(0, 0, 10), seg(1, 20, 20, final=True, marker=True)])
    assert kinds(rows) == ["segment", "restart"] and rows[1].x == 100
    rows = timeline.build(incident(0, 10), [seg(0, 0, 10)])
    assert kinds(rows) == ["segment", "open"]
