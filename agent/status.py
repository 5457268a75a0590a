"""The status document: what the running agent writes every :data:`INTERVAL_S` seconds, and what
``bodycam status`` and ``bodycam doctor`` read (through :mod:`agent.statusfile`).

One typed document instead of a dict each side spells its own way: :class:`StatusDocument` is built by
``Agent.status()``, written with :meth:`StatusDocument.as_json` and read back with
:meth:`StatusDocument.from_json`, so writer and readers cannot disagree on a name. Its JSON form is
documented field by field in docs/INSTALL.md ("bodycam status").

Compatibility within :data:`SCHEMA`: a reader ignores keys it does not know (a newer agent may add
some) and takes the default for an optional key that is missing; ``schema`` changes only when a key
changes meaning or a required one is added.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field

from comms.uplink import UplinkStatus

SCHEMA = 1
#: The running agent rewrites the document this often.
INTERVAL_S = 2.0


class StatusDocumentError(ValueError):
    """A JSON value that is not a status document; the message names the key."""


@dataclass(frozen=True)
class PreEvent:
    """The pre-event ring in RAM."""

    seconds_held: float
    memory_bytes: int
    window_seconds: float
    #: recording.pre_event_mode (off, announced, standby) and whether the ring fills now.
    mode: str = "standby"
    active: bool = False


@dataclass(frozen=True)
class Storage:
    """The spool's file system (agent.diskspace.DiskSnapshot); ``level`` is ok, warn or critical."""

    level: str
    free_bytes: int
    total_bytes: int
    reason: str
    path: str


@dataclass(frozen=True)
class Backlog:
    """Segments the back office has not acknowledged yet."""

    segments: int
    bytes: int
    oldest_age_s: float | None


@dataclass(frozen=True)
class AuditHead:
    seq: int
    hash: str


@dataclass(frozen=True)
class ChainHead:
    """The newest sealed segment, for ``bodycam verify --head status.json``."""

    seq: int
    manifest_sha256: str | None


@dataclass(frozen=True)
class DisplayRate:
    """The front display: the frame rate it keeps (lower than asked when the panel's bus cannot carry it)."""

    driver: str
    fps: float
    target_fps: float


@dataclass(frozen=True)
class StatusAlert:
    """One of agent.alerts' alerts as display and telemetry show it; ``severity`` is critical or warning."""

    code: str
    severity: str
    text: str


@dataclass(frozen=True)
class ShiftStatus:
    """Officer check-out (agent.shift): who carries the device, since when, how they were assigned."""

    officer: str | None  # the pseudonymous id; None: nobody ("nicht zugeordnet")
    since: float | None = None  # UNIX time of the assignment
    via: str | None = None  # badge, command or restored
    #: In the dock now; None when the device has no dock contact.
    docked: bool | None = None


@dataclass(frozen=True)
class StatusDocument:
    """One snapshot of the running agent (or, with ``state`` "stopped", its last word)."""

    time: float  # UNIX time of the snapshot
    version: str
    device: str
    site: str
    state: str  # standby | mirror | recording | finishing | stopped
    schema: int = SCHEMA
    incident_id: str | None = None
    recording_since: float | None = None
    frames_seen: int = 0
    frames_lost: int = 0
    overrun_alarm: bool = False
    refused_reason: str | None = None
    #: Whether sound is recorded with the pictures: "off" (audio.enabled = false), "on", or "fault".
    sound: str = "off"
    #: The legal profile in force (policy.profile): nrw, bw, by, he or custom.
    profile: str = "custom"
    pre_event: PreEvent | None = None
    storage: Storage | None = None
    backlog: Backlog | None = None
    sealed: int = 0
    audit_head: AuditHead | None = None
    chain_head: ChainHead | None = None
    #: Worker (camera, recorder, sealer, storage monitor), uplink, homeassistant or audit → what is wrong.
    faults: dict[str, str] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    #: The alert list the display and telemetry show, most severe first.
    alerts: tuple[StatusAlert, ...] = ()
    #: None with no display (driver "dummy") or before its first frame.
    display: DisplayRate | None = None
    #: "host:port" of the configured broker; None when uploading is switched off.
    broker: str | None = None
    #: The uplink's own report (comms.uplink.UplinkStatus); None while it is not running.
    uplink: UplinkStatus | None = None
    #: Officer check-out; None when it is not enabled (checkout.enabled = false).
    checkout: ShiftStatus | None = None
    #: Only in the last document, with state "stopped".
    exit_code: int | None = None

    @property
    def stopped(self) -> bool:
        return self.state == "stopped"

    def as_json(self) -> dict:
        """The document as JSON values (lists, not tuples), every field present."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, value) -> StatusDocument:
        """Parse a decoded JSON value; raises :class:`StatusDocumentError` naming the first bad key."""
        return _build(cls, value, "")


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _build(tp, value, where: str):
    """``value`` as type ``tp`` (a dataclass, ``X | None``, ``tuple[X, ...]``, ``dict[str, X]`` or a scalar);
    ``where`` is the key's path for messages ("" for the whole document)."""
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise StatusDocumentError(f"{where or 'the document'} must be an object")
        hints = typing.get_type_hints(tp)
        kwargs = {}
        for f in dataclasses.fields(tp):
            key = f"{where}.{f.name}" if where else f.name
            if f.name in value:
                kwargs[f.name] = _build(hints[f.name], value[f.name], key)
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise StatusDocumentError(f"{key} is missing")
        return tp(**kwargs)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        [inner] = [a for a in args if a is not type(None)]
        return _build(inner, value, where)
    if origin is tuple:
        if not isinstance(value, list):
            raise StatusDocumentError(f"{where} must be a list")
        return tuple(_build(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise StatusDocumentError(f"{where} must be an object")
        return {k: _build(args[1], v, f"{where}.{k}") for k, v in value.items()}
    return _scalar(tp, value, where)


def _scalar(tp, value, where: str):
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp in (str, bool) and isinstance(value, tp):
        return value
    raise StatusDocumentError(f"{where} = {value!r} is not a {tp.__name__}")
