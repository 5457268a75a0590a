"""Officer check-out's parts on the device, built from ``[checkout]`` and tended by the main thread.

:class:`Shift` owns the assignment (:class:`~agent.checkout.Checkout`), the badge reader thread
(:mod:`ui.badges`, when ``checkout.nfc_reader`` names one) and the dock (:mod:`agent.dock`, when
``controls.dock_pin`` is set). The runtime builds it when ``checkout.enabled`` is true, calls
:meth:`Shift.tend` from its supervision loop (badges presented since the last look, the dock) and hands
:meth:`Shift.command` to the command handler; the display, the status document and telemetry read
:meth:`Shift.view` and :meth:`Shift.status`.
"""

from __future__ import annotations

import logging
import queue
from typing import Callable

from ui.state import OfficerAssignment

from .badgetable import BadgeTable
from .checkout import COMMAND, DOCK, Checkout
from .checkout_settings import CheckoutConfig
from .dock import DockContact, DockWatch
from .status import ShiftStatus

logger = logging.getLogger(__name__)


class Shift:
    def __init__(self, cfg: CheckoutConfig, state_dir: str, audit_log, *, dock_pin: int = 0,
                 dock_pull_up: bool = False, pin_factory=None, open_reader: Callable[[], object] | None = None):
        self.checkout = Checkout(state_dir, audit_log, BadgeTable(cfg.badges))
        self.dock = DockWatch(cfg.dock_seconds)
        self._contact = DockContact(dock_pin, dock_pull_up, pin_factory) if dock_pin else None
        self.reader = None
        if open_reader is None and cfg.nfc_reader == "pn532":
            from ui.nfc import open_pn532

            port, address = cfg.nfc_i2c_port, cfg.nfc_i2c_address
            open_reader = lambda: open_pn532(port, address)  # noqa: E731
        if open_reader is not None:
            from ui.badges import BadgeReaderThread

            self.reader = BadgeReaderThread(open_reader)

    @property
    def officer(self) -> str | None:
        return self.checkout.officer

    def start(self) -> None:
        """Take up a restart's assignment, then listen for badges."""
        self.checkout.restore()
        if self.reader is not None:
            self.reader.start()

    def stop(self) -> None:
        if self.reader is not None:
            self.reader.stop()
        if self._contact is not None:
            self._contact.close()

    def tend(self, *, recording: bool, delivered: Callable[[], bool]) -> bool:
        """Main thread, a few times a second: the badges presented since the last look, then the dock.
        True when a badge was presented (the display wakes to show the result)."""
        presented = False
        while self.reader is not None:
            try:
                event = self.reader.events.get_nowait()
            except queue.Empty:
                break
            presented = True
            if self.checkout.badge(event.uid) is not None:
                self.dock.assigned_here()
        if self._contact is not None and self.dock.shift_over(self._contact.docked, recording, delivered):
            if self.checkout.officer is not None and self.checkout.unassign(DOCK) is not None:
                self.dock.try_again()
        return presented

    def command(self, officer: str | None, command_id: str) -> str | None:
        """The back office's assign (``officer``) or unassign (None); a reason to refuse, or None.
        On the broker channel's thread: ``assigned_here`` only sets a flag the main thread reads."""
        if officer is None:
            return self.checkout.unassign(COMMAND, command_id=command_id)
        refusal = self.checkout.assign(officer, COMMAND, command_id=command_id)
        if refusal is None:
            self.dock.assigned_here()
        return refusal

    def view(self) -> OfficerAssignment:
        return OfficerAssignment(self.checkout.officer, self.checkout.notice())

    @property
    def docked(self) -> bool | None:
        return self.dock.docked if self._contact is not None else None

    def status(self) -> ShiftStatus:
        a = self.checkout.assignment
        return ShiftStatus(a.officer, a.since, a.via, self.docked)

    def faults(self) -> dict[str, str]:
        faults = {}
        if self.reader is not None and self.reader.fault:
            faults["nfc"] = self.reader.fault
        if self.checkout.fault:
            faults["checkout"] = self.checkout.fault
        return faults
