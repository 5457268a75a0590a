"""Reading the running agent's status file (``runtime.status_file``, default ``/run/bodycam/status.json``).

The runtime (``agent.runtime``) writes the file; ``bodycam status`` and ``bodycam doctor`` only read
it, so neither needs to talk to the running process. What both sides may rely on:

* The runtime replaces the whole file atomically every ``interval_s`` seconds (2 today) and writes a
  last document with ``"state": "stopped"`` and its ``exit_code`` when it ends. systemd creates
  ``/run/bodycam`` (``RuntimeDirectory=``) and removes it when the service stops, so a file that is
  present but old means a hung agent.
* A reader treats the file as *stale* when its time stamp is more than ``STALE_FACTOR`` intervals (at
  least ``STALE_MIN_S``) in the past, and ignores keys it does not know; keys may be added without
  notice, ``schema`` (absent = 1) changes only when a key changes meaning.
* The file holds no secrets. Mode 0644 lets any local user run ``bodycam status``; a file the
  service's ``UMask=0027`` left at 0640 needs ``sudo``, which the error message says.

Schema 1, as ``Agent.status()`` writes it (every key but ``time`` is optional for readers)::

    {
      "time": 1764000000.25,              # UNIX time of this write
      "version": "0.1.0", "device": "cam-0042", "site": "musterstadt",
      "state": "recording",               # standby | mirror | recording | finishing | stopped
      "incident_id": "…" or null, "recording_since": 1763999990.0 or null,
      "frames_seen": 123, "frames_lost": 0, "overrun_alarm": false, "refused_reason": null or "…",
      "pre_event": {"seconds_held": 30.0, "memory_bytes": 1, "window_seconds": 30.0},
      "storage": {"level": "ok", "free_bytes": 1, "total_bytes": 2, "reason": "…", "path": "…"},
      "backlog": {"segments": 0, "bytes": 0, "oldest_age_s": null},
      "sealed": 12, "audit_head": {"seq": 1, "hash": "…"},
      "chain_head": {"seq": 42, "manifest_sha256": "…"},   # for `bodycam verify --head status.json`
      "faults": {"camera": "…"}, "restarts": {"camera": 0},
      "exit_code": 0                      # only in the last document, with "state": "stopped"
    }

Proposed additions, read when present: ``pid``, ``interval_s``, ``started_at``, ``uplink``
(``{"connected", "broker", "last_ack_at"}``) and ``alarms`` (the sentences on the display).
:func:`write_status` writes such a document with mode 0644 for a runtime that wants to use it.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from base.errors import BodycamError

STATUS_PATH = "/run/bodycam/status.json"
SCHEMA = 1
#: The runtime rewrites the file this often unless the document says otherwise (``interval_s``).
DEFAULT_INTERVAL_S = 2.0
#: A status older than this many intervals means the agent stopped writing it (hung or killed).
STALE_FACTOR = 3.0
STALE_MIN_S = 15.0


class StatusFileError(BodycamError):
    """The status file exists but cannot be read or is not a status document."""


@dataclass(frozen=True)
class AgentStatus:
    """One reading of the status file; ``doc`` is the JSON object as written."""

    doc: dict
    age_s: float

    @property
    def stopped(self) -> bool:
        """The agent wrote its last document and ended."""
        return self.doc.get("state") == "stopped"

    @property
    def stale(self) -> bool:
        interval = self.doc.get("interval_s") or DEFAULT_INTERVAL_S
        return self.age_s > max(STALE_FACTOR * float(interval), STALE_MIN_S)

    @property
    def running(self) -> bool:
        return not self.stopped and not self.stale


def written_at(doc: dict) -> float | None:
    """The document's time stamp (``time``; ``written_at`` in the proposed form)."""
    for key in ("time", "written_at"):
        value = doc.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def write_status(doc: dict, path: str | os.PathLike = STATUS_PATH) -> None:
    """Replace the status file atomically with mode 0644; ``schema`` and ``time`` are filled in."""
    path = Path(path)
    data = {"schema": SCHEMA, "time": time.time(), **doc}
    text = json.dumps(data, sort_keys=True, indent=1) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=".status-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            os.fchmod(fh.fileno(), 0o644)
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_status(path: str | os.PathLike = STATUS_PATH, now: float | None = None) -> AgentStatus | None:
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
        doc = json.loads(text)
    except ValueError:
        raise StatusFileError(f"{path}: not valid JSON; the agent may be writing an old format") from None
    if not isinstance(doc, dict) or written_at(doc) is None:
        raise StatusFileError(f"{path}: not a bodycam status document (no time stamp)")
    if doc.get("schema", SCHEMA) != SCHEMA:
        raise StatusFileError(f"{path}: status schema {doc.get('schema')!r}, this bodycam reads schema {SCHEMA}; "
                              "update the software so the command and the agent match")
    now = time.time() if now is None else now
    return AgentStatus(doc, max(0.0, now - written_at(doc)))


def status_path(cfg) -> str:
    """Where ``cfg`` has the runtime write its status (``runtime.status_file``), else the default."""
    runtime = getattr(cfg, "runtime", None)
    return getattr(runtime, "status_file", None) or STATUS_PATH
