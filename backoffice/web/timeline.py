"""An incident's timeline for its page: each segment with its pre-event part, and each gap explained.

Plain rows (no HTML, no database), so the template lays them out as a table and as a bar, and tests read them. A
position is a share of the incident's span (0 to 100), for the bar's SVG (no inline styles under the CSP).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

#: Between two consecutive segments, less than this (or two frame intervals) is the cut itself, not a gap.
CONTINUOUS = timedelta(seconds=0.5)

SEGMENT, MISSING, PAUSE, RESTART, OPEN = "segment", "missing", "pause", "restart", "open"


@dataclass(frozen=True)
class Row:
    kind: str                     # SEGMENT, MISSING (never received), PAUSE (no picture), RESTART, OPEN
    start: datetime | None
    end: datetime | None
    segment: object = None        # the catalog Segment, for SEGMENT rows
    pre_event: timedelta = timedelta(0)  # how much of it was recorded before the trigger
    indexes: tuple[int, ...] = ()         # MISSING: which segment indexes
    x: float = 0.0                # position on the bar, percent
    width: float = 0.0
    pre_width: float = 0.0

    @property
    def duration(self) -> timedelta | None:
        return None if self.start is None or self.end is None else self.end - self.start


def build(incident, segments) -> list[Row]:
    """``segments``: the incident's catalogued segments (any order)."""
    ordered = sorted(segments, key=lambda s: s.segment_index)
    span = max((incident.end - incident.start).total_seconds(), 1e-6)

    def at(t: datetime) -> float:
        return round(100 * max(0.0, (t - incident.start).total_seconds()) / span, 3)

    missing = set(missing_indexes(ordered))
    rows: list[Row] = []
    if ordered and ordered[0].segment_index > 0:  # the first ones never arrived
        rows.append(Row(MISSING, None, ordered[0].start, indexes=tuple(range(ordered[0].segment_index))))
    previous = None
    for seg in ordered:
        if previous is not None:
            skipped = tuple(i for i in range(previous.segment_index + 1, seg.segment_index) if i in missing)
            if skipped:
                rows.append(Row(MISSING, previous.end, seg.start, indexes=skipped, x=at(previous.end),
                                width=at(seg.start) - at(previous.end)))
            elif seg.start - previous.end >= _tolerance(previous) and not seg.end_marker:
                rows.append(Row(PAUSE, previous.end, seg.start, x=at(previous.end),
                                width=at(seg.start) - at(previous.end)))
        if seg.end_marker:
            rows.append(Row(RESTART, seg.start, seg.end, segment=seg, x=at(seg.start)))
        else:
            length = seg.end - seg.start
            pre = length * (seg.pre_event_frames / seg.frame_count) if seg.frame_count else timedelta(0)
            rows.append(Row(SEGMENT, seg.start, seg.end, segment=seg, pre_event=pre, x=at(seg.start),
                            width=at(seg.end) - at(seg.start), pre_width=at(seg.start + pre) - at(seg.start)))
        previous = seg
    if ordered and not any(s.final for s in ordered):
        rows.append(Row(OPEN, ordered[-1].end, None, x=100.0))
    return rows


def _tolerance(seg) -> timedelta:
    """How far the next segment may start after this one's last frame without a gap between them."""
    interval = (seg.end - seg.start) / max(seg.frame_count - 1, 1)
    return max(CONTINUOUS, 2 * interval)


def missing_indexes(segments) -> list[int]:
    """The segment indexes below the highest that never arrived (``segments``: the incident's, any order)."""
    have = {s.segment_index for s in segments}
    return [i for i in range(max(have, default=-1) + 1) if i not in have]


def pre_event_total(rows: list[Row]) -> timedelta:
    return sum((r.pre_event for r in rows if r.kind == SEGMENT), timedelta(0))
