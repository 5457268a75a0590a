"""Officer check-out: which officer carries this device, how that changes, and where it is written.

At the start of a shift an officer is assigned to the device, by a badge on its NFC reader (looked up
in the back office's badge table, :mod:`agent.badgetable`) or by the back office's signed ``assign``
command; the device becomes unassigned in its dock at the end of the shift (:mod:`agent.dock`) or by
the ``unassign`` command. A badge of another officer replaces the assignment; the same badge again
changes nothing. Officers are pseudonymous ids (:func:`base.ids.is_officer_id`); the device never
holds a name.

What an assignment changes, and the order in which it is made durable: first the audit line
(``officer_assigned`` / ``officer_unassigned``), which also makes the officer the stamp of every later
audit line (:meth:`evidence.audit.AuditLog.restamp`) — if the card refuses it, nothing changes and the
caller is told why; then the state file ``checkout.json`` in the state directory, so a restart (a crash,
a flat battery in the field) keeps the officer: :meth:`Checkout.restore` takes it up again with an
``officer_assigned`` line of ``via`` "restored". The sealer reads :attr:`Checkout.officer` when an
incident's first segment is sealed (agent.sealing), the display and telemetry read :meth:`Checkout.view`.

An unassigned device records as always (safety first); it only says so.

A note on locking: changes come from the broker channel's thread (commands) and the main thread
(badges, the dock). ``_lock`` makes each change -- audit line, state file, the attribute -- one step, so
two changes never interleave. Readers take :attr:`assignment`, an immutable snapshot replaced whole,
without the lock.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from base.durable import write_atomically
from base.errors import BodycamError
from base.ids import is_officer_id
from evidence import audit

from .badgetable import BadgeTable

logger = logging.getLogger(__name__)

STATE_FILE = "checkout.json"
#: How long the display says "badge unknown" after an unknown badge.
NOTICE_S = 5.0
BADGE, COMMAND, DOCK, RESTORED = "badge", "command", "dock", "restored"


@dataclass(frozen=True)
class Assignment:
    """Who carries the device: ``officer`` None means nobody is assigned."""

    officer: str | None = None
    since: float | None = None  # wall-clock seconds
    via: str | None = None  # badge, command or restored

    def as_dict(self) -> dict:
        return {"officer": self.officer, "since": self.since, "via": self.via}


class Checkout:
    """The assignment of one device, kept in ``state_dir`` and written to ``audit_log``."""

    def __init__(self, state_dir: str | Path, audit_log, badges: BadgeTable | None = None, *,
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic):
        self.path = Path(state_dir) / STATE_FILE
        self.audit_log = audit_log
        self.badges = badges
        self._clock, self._monotonic = clock, monotonic
        self._lock = threading.Lock()
        #: The current assignment: an immutable snapshot, replaced whole.
        self.assignment = Assignment()
        self._notice: tuple[str, float] | None = None
        #: Why the state file could not be written (shown as a fault until it can), or None.
        self.fault: str | None = None

    @property
    def officer(self) -> str | None:
        return self.assignment.officer

    def notice(self) -> str | None:
        """A short message the display shows for a few seconds ("badge_unknown"), or None."""
        notice = self._notice
        if notice is None or self._monotonic() >= notice[1]:
            return None
        return notice[0]

    # -- changes -------------------------------------------------------------------------------------
    def restore(self) -> None:
        """At start: take up the assignment the last run left (a restart in the middle of a shift)."""
        try:
            doc = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            logger.error("%s unreadable (%s); the device starts unassigned", self.path, exc)
            return
        officer = doc.get("officer") if isinstance(doc, dict) else None
        if officer is None:
            return
        if not is_officer_id(officer):
            logger.error("%s names %r, which is no officer id; the device starts unassigned", self.path, officer)
            return
        with self._lock:
            try:
                self.audit_log.restamp({"officer": officer}, audit.OFFICER_ASSIGNED, officer=officer, via=RESTORED,
                                       since=doc.get("since"))
            except BodycamError as exc:
                logger.error("the assignment to %s could not be restored: %s", officer, exc)
                return
            since = doc.get("since")
            self.assignment = Assignment(officer, since if isinstance(since, (int, float)) else None, RESTORED)
        logger.info("officer %s is still assigned (restored after a restart)", officer)

    def assign(self, officer: str, via: str, *, command_id: str | None = None) -> str | None:
        """Assign ``officer``; returns a reason when it could not be recorded (then nothing changed)."""
        if not is_officer_id(officer):
            return f"{officer!r} is no officer id"
        with self._lock:
            previous = self.assignment.officer
            if previous == officer:
                return None
            fields = {"officer": officer, "via": via, "previous": previous}
            if command_id is not None:
                fields["command_id"] = command_id
            refusal = self._change(Assignment(officer, self._clock(), via), fields, audit.OFFICER_ASSIGNED)
        if refusal is None:
            logger.warning("officer %s assigned (%s)%s", officer, via, f", replacing {previous}" if previous else "")
        return refusal

    def unassign(self, via: str, *, command_id: str | None = None) -> str | None:
        """Nobody carries the device any more; returns a reason when it could not be recorded."""
        with self._lock:
            previous = self.assignment.officer
            if previous is None:
                return None
            fields = {"officer": previous, "via": via}
            if command_id is not None:
                fields["command_id"] = command_id
            refusal = self._change(Assignment(), fields, audit.OFFICER_UNASSIGNED)
        if refusal is None:
            logger.warning("officer %s unassigned (%s)", previous, via)
        return refusal

    def badge(self, uid: str) -> str | None:
        """A badge was presented: assign its officer. Returns the officer, or None for an unknown badge."""
        try:
            officer = self.badges.officer(uid) if self.badges is not None else None
            reason = "not in the badge table" if self.badges is not None else "no badge table configured"
        except BodycamError as exc:
            officer, reason = None, str(exc)
        if officer is None:
            logger.warning("badge %s refused: %s", uid, reason)
            self._notice = ("badge_unknown", self._monotonic() + NOTICE_S)
            try:
                self.audit_log.append(audit.BADGE_REFUSED, uid=uid, reason=reason)
            except BodycamError as exc:
                logger.error("badge_refused not written: %s", exc)
            return None
        self._notice = None
        refusal = self.assign(officer, BADGE)
        if refusal is not None:
            logger.error("badge %s of %s not assigned: %s", uid, officer, refusal)
            return None
        return officer

    def _change(self, new: Assignment, fields: dict, event: str) -> str | None:
        """Audit line with the new stamp, then the state file, then the snapshot (``_lock`` held)."""
        try:
            self.audit_log.restamp({"officer": new.officer} if new.officer else {}, event, **fields)
        except BodycamError as exc:
            return f"the assignment could not be written to the audit log: {exc}"
        self.assignment = new
        try:
            write_atomically(self.path, json.dumps(new.as_dict(), sort_keys=True).encode() + b"\n",
                             what="writing the officer assignment")
            self.fault = None
        except BodycamError as exc:
            # The audit log already says so, and the device acts on it; only a restart would forget it.
            self.fault = f"the assignment is not kept across a restart: {exc}"
            logger.error("%s", self.fault)
        return None
