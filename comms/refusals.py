"""Refused commands in the audit log: the first of a burst in full, the rest as counts per code.

Anyone who may publish on a device's ``cmd`` topic can send junk without the command key. One signed
line per refusal would let them fill the card (about 440 bytes each); none would hide the attack. So
the first refusal of a burst is written in full, always; the ones after it are counted per code and
written as one ``command_rejections`` line when the burst ends (no refusal for ``quiet_s``), every
``summary_every_s`` while it goes on, and before any authenticated command's own line, so the log
keeps the order of events. The device's log (journal) follows the same rule. One owner: the thread
that handles commands.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Callable

from evidence import audit

logger = logging.getLogger(__name__)


class RefusalLog:
    def __init__(self, audit_log, *, quiet_s: float = 60.0, summary_every_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time):
        self.audit_log = audit_log  # anything with append(event, **fields); None writes no audit lines
        self.quiet_s, self.summary_every_s = quiet_s, summary_every_s
        self.clock, self.wall = clock, wall
        self._open = False
        self._counts: Counter = Counter()
        self._bytes = 0
        self._since: float | None = None  # wall time of the first counted refusal
        self._until: float | None = None
        self._last = self._last_summary = 0.0

    def refused(self, code: str, reason: str, **fields) -> None:
        """One refused command: written in full if it opens a burst, else counted."""
        now = self.clock()
        self._end_if_quiet(now)
        self._last = now
        if not self._open:
            self._open, self._last_summary = True, now
            logger.warning("command rejected (%s): %r", code, reason)  # %r: peer-supplied text, escaped
            self._append(audit.COMMAND_REJECTED, code=code, reason=reason, **fields)
            return
        logger.debug("command rejected (%s): %r", code, reason)
        wall = round(self.wall(), 3)
        self._counts[code] += 1
        self._bytes += fields.get("size", 0)
        self._since = self._since or wall
        self._until = wall
        if now - self._last_summary >= self.summary_every_s:
            self._summarise(ended=False, now=now)

    def tick(self) -> None:
        """Called now and then by the owning thread: ends a burst that has gone quiet."""
        self._end_if_quiet(self.clock())

    def close(self) -> None:
        """End the burst now (before an authenticated command's line, at shutdown)."""
        if self._open:
            self._summarise(ended=True, now=self.clock())
            self._open = False

    def _end_if_quiet(self, now: float) -> None:
        if self._open and now - self._last >= self.quiet_s:
            self.close()

    def _summarise(self, ended: bool, now: float) -> None:
        self._last_summary = now
        if not self._counts:
            return
        counts, total = dict(sorted(self._counts.items())), sum(self._counts.values())
        logger.warning("%d more command(s) rejected%s: %s", total, "" if ended else " (still arriving)",
                       ", ".join(f"{code} {n}" for code, n in counts.items()))
        self._append(audit.COMMAND_REJECTIONS, counts=counts, total=total, bytes=self._bytes, since=self._since,
                     until=self._until, ended=ended)
        self._counts, self._bytes, self._since, self._until = Counter(), 0, None, None

    def _append(self, event: str, **fields) -> None:
        if self.audit_log is not None:
            self.audit_log.append(event, **fields)
