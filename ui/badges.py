"""The badge reader thread: owns the NFC reader, posts each badge presented to a queue.

An officer holds a badge to the reader at the start of a shift. The reader sees the card again at
every poll while it lies there; :class:`BadgeReaderThread` posts one :class:`BadgeSeen` when a UID
appears and another only after the field was empty for ``gone_s`` (a second tap). What a badge
means is not decided here: the agent looks the UID up in the badge table the back office provides.

A reader that fails (unplugged, the bus refuses) is a :attr:`~BadgeReaderThread.fault`, logged once and
retried every ``retry_s`` by opening it again; it never stops anything else. The queue is bounded and
never waited on: a badge that finds it full is dropped and counted (:attr:`~BadgeReaderThread.dropped`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

logger = logging.getLogger(__name__)

#: Badge events waiting for the agent (a handful of taps at most; the agent drains it four times a second).
QUEUE_SIZE = 8


class BadgeReader(Protocol):
    """What the thread needs of a reader: Adafruit's ``read_passive_target`` (UID bytes, or None)."""

    def read_passive_target(self, card_baud: int = 0, timeout: float = 1.0) -> bytes | None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class BadgeSeen:
    """A badge was presented: its UID as lower-case hex without separators."""

    uid: str
    wall_time: float = field(default_factory=time.time)


class BadgeReaderThread(threading.Thread):
    """Polls the reader ``open_reader()`` returns and posts :class:`BadgeSeen` events to ``events``."""

    def __init__(self, open_reader: Callable[[], BadgeReader], events: queue.Queue | None = None, *,
                 poll_s: float = 0.3, gone_s: float = 2.0, retry_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__(name="BadgeReaderThread", daemon=True)
        self._open = open_reader
        self.events: queue.Queue = events if events is not None else queue.Queue(maxsize=QUEUE_SIZE)
        self.poll_s, self.gone_s, self.retry_s = poll_s, gone_s, retry_s
        self._clock = clock
        self._stopping = threading.Event()
        self._reader: BadgeReader | None = None
        self._present: str | None = None  # the UID in the field now
        self._last_seen = 0.0
        #: What is wrong with the reader (a sentence), or None while it reads.
        self.fault: str | None = None
        #: Badges dropped because nobody took the previous ones.
        self.dropped = 0

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self.is_alive():
            self.join(timeout)
            if self.is_alive():
                logger.error("badge reader thread did not stop within %.1f s", timeout)

    def run(self) -> None:
        try:
            while not self._stopping.is_set():
                if self._reader is None and not self._open_reader():
                    self._stopping.wait(self.retry_s)
                    continue
                self._poll()
        finally:
            self._close_reader()

    def _open_reader(self) -> bool:
        try:
            self._reader = self._open()
        except Exception as exc:  # NfcError, OSError, ImportError: the reader is absent or misconfigured
            self._failed(exc)
            return False
        if self.fault is not None:
            logger.warning("NFC reader works again")
        self.fault = None
        return True

    def _poll(self) -> None:
        try:
            uid = self._reader.read_passive_target(timeout=self.poll_s)
        except Exception as exc:
            self._failed(exc)
            self._close_reader()
            self._stopping.wait(self.retry_s)
            return
        now = self._clock()
        if uid:
            text = bytes(uid).hex()
            if text != self._present or now - self._last_seen >= self.gone_s:
                self._post(BadgeSeen(text))
            self._present, self._last_seen = text, now
        elif self._present is not None and now - self._last_seen >= self.gone_s:
            self._present = None
        if not uid:
            self._stopping.wait(self.poll_s / 3)  # a reader that answers at once must not spin

    def _post(self, event: BadgeSeen) -> None:
        try:
            self.events.put_nowait(event)
        except queue.Full:
            self.dropped += 1
            logger.error("badge %s dropped: %d earlier badges are still waiting to be handled", event.uid,
                         self.events.qsize())

    def _failed(self, exc: Exception) -> None:
        why = f"NFC reader: {exc}"
        if why != self.fault:
            logger.error("%s (retrying every %.0f s)", why, self.retry_s)
        self.fault = why

    def _close_reader(self) -> None:
        if self._reader is not None:
            try:
                self._reader.close()
            except Exception:
                logger.exception("closing the NFC reader failed")
            self._reader = None
