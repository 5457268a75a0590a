"""The events that are open (their ``new`` was published, their ``end`` not yet), kept on the card.

A consumer must be able to rely on every ``new`` getting its ``end``, also when the agent is killed
or loses power in between. So the open set is written to ``<state_dir>/open_events.json`` whenever
an event opens or ends, before its message is handed to MQTT (a crash in between costs at most an
``end`` for an event nobody saw start, never a ``new`` without its ``end``). The next agent reads it
back and reconciles (comms.events). Replaced durably with base.durable.write_atomically.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from base.durable import write_atomically
from base.errors import StorageError

logger = logging.getLogger(__name__)

FILE_NAME = "open_events.json"
_FORMAT = 1


class OpenEventsFile:
    """Load and save the open recording (or None) and open alerts (by code) of one device."""

    def __init__(self, path: str | os.PathLike, device: str, site: str):
        self.path = Path(path)
        self.device, self.site = device, site
        self._saved: bytes | None = None
        self._failing = False

    def load(self) -> tuple[dict | None, dict[str, dict]]:
        """What was open when the last agent ended; nothing for a missing, damaged or foreign file."""
        try:
            doc = json.loads(self.path.read_bytes())
            if doc.get("format") != _FORMAT or (doc.get("device"), doc.get("site")) != (self.device, self.site):
                logger.warning("%s belongs to another device or format (%r/%r); its open events are not ended",
                               self.path, doc.get("site"), doc.get("device"))
                return None, {}
            recording, alerts = doc.get("recording"), doc.get("alerts")
            if not (recording is None or isinstance(recording, dict)) or not isinstance(alerts, dict):
                raise ValueError("unexpected structure")
        except FileNotFoundError:
            return None, {}
        except (OSError, ValueError, AttributeError) as exc:
            logger.warning("%s unreadable (%s); events left open by the last run cannot be ended", self.path, exc)
            return None, {}
        return recording, alerts

    def save(self, recording: dict | None, alerts: dict[str, dict]) -> None:
        """Write the open set durably; a failure is logged (once per spell) and never stops the events."""
        data = json.dumps({"format": _FORMAT, "device": self.device, "site": self.site, "recording": recording,
                           "alerts": alerts}, sort_keys=True).encode() + b"\n"
        if data == self._saved:
            return
        try:
            write_atomically(self.path, data, what="writing the open events")
        except StorageError as exc:
            if not self._failing:
                logger.error("cannot keep the open events (%s): after a crash their 'end' may never be published",
                             exc)
            self._failing = True
            return
        self._failing = False
        self._saved = data
