"""The running agent's status file (``runtime.status_file``, default ``/run/bodycam/status.json``).

The runtime (``agent.runtime``) writes it; ``bodycam status`` and ``bodycam doctor`` only read it, so
neither needs to talk to the running process. The content is one :class:`agent.status.StatusDocument`.
What both sides may rely on:

* The runtime replaces the whole file atomically every ``INTERVAL_S`` seconds (2) and writes a last
  document with ``"state": "stopped"`` and its ``exit_code`` when it ends. systemd creates
  ``/run/bodycam`` (``RuntimeDirectory=``) and removes it when the service stops, so a file that is
  present but old means a hung agent.
* A reader treats the file as *stale* when its time stamp is more than ``STALE_FACTOR`` intervals (at
  least ``STALE_MIN_S``) in the past.
* The file holds no secrets and has mode 0644, whatever the service's ``UMask=``: any local user may
  run ``bodycam status``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from base.durable import write_atomically
from base.errors import BodycamError

from .status import INTERVAL_S, SCHEMA, StatusDocument, StatusDocumentError

STATUS_PATH = "/run/bodycam/status.json"
#: A status older than this many intervals means the agent stopped writing it (hung or killed).
STALE_FACTOR = 3.0
STALE_MIN_S = 15.0


class StatusFileError(BodycamError):
    """The status file exists but cannot be read or is not a status document."""


@dataclass(frozen=True)
class StatusReading:
    """One reading of the status file: the document and how old it was when read."""

    doc: StatusDocument
    age_s: float

    @property
    def stopped(self) -> bool:
        """The agent wrote its last document and ended."""
        return self.doc.stopped

    @property
    def stale(self) -> bool:
        return self.age_s > max(STALE_FACTOR * INTERVAL_S, STALE_MIN_S)

    @property
    def running(self) -> bool:
        return not self.stopped and not self.stale


def write_status(doc: StatusDocument, path: str | os.PathLike = STATUS_PATH) -> None:
    """Replace the status file atomically with mode 0644."""
    path = Path(path)
    text = json.dumps(doc.as_json(), sort_keys=True, indent=1) + "\n"
    # /run is tmpfs: replaced atomically for readers, no fsync (it does not outlive a reboot anyway)
    write_atomically(path, text.encode("utf-8"), mode=0o644, durable=False, what="writing the status file")


def read_status(path: str | os.PathLike = STATUS_PATH, now: float | None = None) -> StatusReading | None:
    """The current status, or None when there is no file (the agent is not running)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except PermissionError:
        raise StatusFileError(f"{path}: no permission to read the agent's status; run it with sudo") from None
    except OSError as exc:
        raise StatusFileError(f"{path}: cannot read the agent's status ({exc.strerror})") from None
    try:
        value = json.loads(text)
    except ValueError:
        raise StatusFileError(f"{path}: not valid JSON; the agent may be writing an old format") from None
    if isinstance(value, dict) and value.get("schema", SCHEMA) != SCHEMA:
        raise StatusFileError(f"{path}: status schema {value.get('schema')!r}, this bodycam reads schema {SCHEMA}; "
                              "update the software so the command and the agent match")
    try:
        doc = StatusDocument.from_json(value)
    except StatusDocumentError as exc:
        raise StatusFileError(f"{path}: not a bodycam status document ({exc})") from None
    now = time.time() if now is None else now
    return StatusReading(doc, max(0.0, now - doc.time))


def status_path(cfg) -> str:
    """Where the config ``cfg`` has the runtime write its status; the default without a readable config."""
    return cfg.runtime.status_file if cfg is not None else STATUS_PATH
