"""Configuration: one TOML file parsed once into frozen, typed dataclasses.

Every key has a default, so an empty file (or none at all) is the embedded simulation setup. Unknown
keys, wrong types and out-of-range values are rejected with a message that names the file and the
key; nothing half-parsed is ever used. Limits that the law or the hardware imposes live in the field
metadata (``min``/``max``/``choices``) so the check and the documentation cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path

from base.errors import ConfigError

#: The legal ceiling for the pre-event window. A deployment may set less (0 disables pre-recording),
#: never more: some German states do not allow pre-recording at all, none allows minutes of it.
PRE_EVENT_MAX_SECONDS = 120


def option(default, doc, **limits):
    """A config key: its default, a one-line doc, and limits (min, max, choices, even, pattern="id").

    Sections of other packages (ui, comms) declare their frozen dataclasses with this and are listed
    in :class:`Config`; the loader checks them exactly like the agent's own.
    """
    return field(default=default, metadata={"doc": doc, **limits})


_opt = option


@dataclass(frozen=True)
class DeviceConfig:
    id: str = _opt("sim-0001", "Device id; part of every topic, manifest and file name.", pattern="id")
    site: str = _opt("demo", "Site (municipality or department) the device belongs to.", pattern="id")


@dataclass(frozen=True)
class CameraConfig:
    backend: str = _opt("auto", "picamera2, synthetic, or auto (picamera2 where installed).",
                        choices=("auto", "picamera2", "synthetic"))
    width: int = _opt(1920, "Frame width in pixels (even).", min=160, max=4096, even=True)
    height: int = _opt(1080, "Frame height in pixels (even).", min=120, max=2304, even=True)
    fps: float = _opt(30.0, "Frames per second.", min=1.0, max=60.0)
    bitrate: int = _opt(10_000_000, "H.264 target bitrate in bit/s.", min=100_000, max=50_000_000)
    gop_frames: int = _opt(0, "Keyframe interval in frames; 0 means one keyframe per second (= fps).",
                           min=0, max=600)
    synthetic_realtime: bool = _opt(True, "Synthetic source: pace frames in real time (false: as fast as possible).")
    synthetic_replay_seconds: float = _opt(
        0.0, "Synthetic source: pre-encode this many seconds once and replay them (0: encode live).",
        min=0.0, max=600.0)

    @property
    def keyframe_interval(self) -> int:
        return self.gop_frames or max(1, round(self.fps))


@dataclass(frozen=True)
class RecordingConfig:
    pre_event_seconds: float = _opt(
        30.0, f"Pre-event window held in RAM (0 disables pre-recording; at most {PRE_EVENT_MAX_SECONDS}).",
        min=0.0, max=float(PRE_EVENT_MAX_SECONDS))
    pre_event_max_mib: float = _opt(
        96.0, "Byte bound of the pre-event ring in MiB; whole oldest GOPs are dropped beyond it.",
        min=1.0, max=1024.0)
    segment_seconds: float = _opt(10.0, "Length of a sealed segment; cuts happen at keyframes.", min=2.0, max=60.0)
    post_event_seconds: float = _opt(0.0, "Keep recording this long after the stop trigger.", min=0.0, max=60.0)
    capture_queue_seconds: float = _opt(
        3.0, "Frames buffered between camera thread and recorder before frames are dropped (overrun alarm).",
        min=0.5, max=30.0)


@dataclass(frozen=True)
class EvidenceConfig:
    recipients: tuple[str, ...] = _opt(
        (), "The municipality's age recipients ('age1...' strings or paths of evidence.pub files); "
            "segments are encrypted to all of them. Required to record.")
    device_key: str = _opt("/etc/bodycam/keys/device.key", "The device's Ed25519 signing key (mode 0600).")
    state_dir: str = _opt("/var/lib/bodycam/state", "Where the sequence number and chain head persist.")


@dataclass(frozen=True)
class StorageConfig:
    spool_dir: str = _opt("/var/lib/bodycam/spool", "Sealed segments waiting for the back office's receipt.")
    audit_log: str = _opt("/var/lib/bodycam/audit/audit.jsonl", "The signed, hash-chained audit log.")
    warn_free_mib: float = _opt(2048.0, "Warn (display, telemetry) below this much free space.", min=1.0,
                                max=1_048_576.0)
    critical_free_mib: float = _opt(
        512.0, "Below this, finish the current segment and refuse new recordings.", min=1.0, max=1_048_576.0)
    purge_policy: str = _opt("on_ack", "Delete a segment once its receipt arrived (on_ack) or only when space "
                                       "is needed (when_needed). Never before the receipt.",
                             choices=("on_ack", "when_needed"))


@dataclass(frozen=True)
class RuntimeConfig:
    status_file: str = _opt("/run/bodycam/status.json", "Where the running agent writes its status for "
                                                        "'bodycam status' (every 2 s, replaced atomically).")
    max_restarts: int = _opt(3, "How often a crashed worker is restarted before the agent exits non-zero "
                                "(systemd then restarts the whole service).", min=0, max=100)
    stall_seconds: float = _opt(5.0, "No camera frame for this long counts as a hung pipeline: the systemd "
                                     "watchdog is no longer fed.", min=1.0, max=120.0)


@dataclass(frozen=True)
class Config:
    device: DeviceConfig = field(default_factory=DeviceConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    recording: RecordingConfig = field(default_factory=RecordingConfig)
    evidence: EvidenceConfig = field(default_factory=EvidenceConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    battery: object = field(default_factory=lambda: _foreign("battery")())
    telemetry: object = field(default_factory=lambda: _foreign("telemetry")())
    display: object = field(default_factory=lambda: _foreign("display")())
    controls: object = field(default_factory=lambda: _foreign("controls")())
    mqtt: object = field(default_factory=lambda: _foreign("mqtt")())
    uplink: object = field(default_factory=lambda: _foreign("uplink")())
    commands: object = field(default_factory=lambda: _foreign("commands")())
    #: Where the values came from, for messages; not a key of the file.
    source: str = field(default="<embedded defaults>", compare=False, metadata={"internal": True})


#: Sections whose dataclass lives next to the code it configures (module, class). Those modules import
#: :func:`option` from here, so they are resolved on first use rather than imported at the top.
FOREIGN_SECTIONS = {
    "battery": ("agent.sensors", "BatteryConfig"),
    "telemetry": ("comms.telemetry", "TelemetryConfig"),
    "display": ("ui.settings", "DisplayConfig"),
    "controls": ("ui.settings", "ControlsConfig"),
    "mqtt": ("comms.settings", "MqttSettings"),
    "uplink": ("comms.settings", "UplinkSettings"),
    "commands": ("comms.settings", "CommandsConfig"),
}


def _foreign(name: str) -> type:
    import importlib

    module, cls = FOREIGN_SECTIONS[name]
    return getattr(importlib.import_module(module), cls)


def sections() -> list[tuple[str, type]]:
    """The (name, dataclass) pairs that make up the file, in order."""
    hints = {name: _foreign(name) if name in FOREIGN_SECTIONS else kind
             for name, kind in typing.get_type_hints(Config).items()}
    return [(f.name, hints[f.name]) for f in dataclasses.fields(Config) if not f.metadata.get("internal")]


def load(path: str | os.PathLike | None = None) -> Config:
    """Read and validate a config file; ``None`` gives the embedded defaults."""
    if path is None:
        return Config()
    return loads(read_config_text(path), source=str(path))


def read_config_text(path: str | os.PathLike, what: str = "config file") -> str:
    """A config file's text, or a ConfigError that names the file and says what is wrong."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what} ({exc.strerror})") from None


def loads(text: str, source: str = "<string>") -> Config:
    """Parse TOML text into a :class:`Config`; errors name ``source`` and the key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    return from_dict(data, source)


def from_dict(data: dict, source: str = "<dict>") -> Config:
    known = dict(sections())
    for key, value in data.items():
        if key not in known:
            raise ConfigError(f"{source}: unknown section [{key}] (known: {', '.join(known)})")
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: '{key}' must be a table [{key}], not a {_tname(value)}")
    built = {name: _build(cls, data.get(name, {}), name, source) for name, cls in known.items()}
    from comms.settings import check_mqtt, check_uplink  # rules across keys that option() cannot express

    check_mqtt(built["mqtt"], source)
    check_uplink(built["uplink"], source)
    storage = built["storage"]
    if storage.critical_free_mib > storage.warn_free_mib:
        raise ConfigError(f"{source}: storage.critical_free_mib ({storage.critical_free_mib:g}) must not exceed "
                          f"storage.warn_free_mib ({storage.warn_free_mib:g})")
    return Config(**built, source=source)


def replace(config: Config, section: str, **changes) -> Config:
    """A copy of ``config`` with some keys of one section changed, validated like the file."""
    current = dataclasses.asdict(getattr(config, section))
    current.update(changes)
    new_section = _build(dict(sections())[section], current, section, config.source)
    return dataclasses.replace(config, **{section: new_section})


def parse_section(cls, table: dict, section: str, source: str = "<dict>"):
    """Validate one section's table into ``cls`` (for sections tested on their own)."""
    return _build(cls, table, section, source)


def _build(cls, table: dict, section: str, source: str):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in table.items():
        where = f"{source}: {section}.{key}"
        if key not in fields:
            raise ConfigError(f"{where}: unknown key (known in [{section}]: {', '.join(fields)})")
        values[key] = _check(where, value, hints[key], fields[key].metadata)
    return cls(**values)


def _check(where: str, value, kind, meta):
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, not {_tname(value)} {value!r}")
    elif kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be a whole number, not {_tname(value)} {value!r}")
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, not {_tname(value)} {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where} must be a finite number, not {value!r}")
        value = float(value)
    elif kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, not {_tname(value)} {value!r}")
    elif typing.get_origin(kind) is tuple:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where} must be a list of strings, not {_tname(value)} {value!r}")
        value = tuple(value)
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and value < lo or hi is not None and value > hi:
        raise ConfigError(f"{where} = {value!r} is out of range (allowed {lo}..{hi})")
    if meta.get("even") and value % 2:
        raise ConfigError(f"{where} = {value!r} must be even (H.264 4:2:0 needs even dimensions)")
    choices = meta.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"{where} = {value!r} is not one of: {', '.join(choices)}")
    if meta.get("pattern") == "id" and not _is_id(value):
        raise ConfigError(f"{where} = {value!r} must be 1-64 characters of a-z, 0-9, '-' or '_' "
                          "(it becomes part of MQTT topics and file names)")
    return value


def _is_id(value: str) -> bool:
    return 0 < len(value) <= 64 and all(c.isascii() and (c.islower() or c.isdigit() or c in "-_") for c in value)


def _tname(value) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "list",
            dict: "table"}.get(type(value), type(value).__name__)


def dumps(config: Config) -> str:
    """The configuration as TOML that :func:`loads` reads back to an equal value."""
    lines = []
    for name, _ in sections():
        lines.append(f"[{name}]")
        for key, value in dataclasses.asdict(getattr(config, name)).items():
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def example_path() -> Path:
    """The documented example file shipped with the package (every key, its default, why)."""
    return Path(__file__).with_name("agent.example.toml")
