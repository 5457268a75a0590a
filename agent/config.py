"""The device's configuration: one TOML file parsed once into typed, frozen sections.

Every key has a default, so an empty file (or none at all) is the embedded simulation setup. Unknown
keys, wrong types and out-of-range values are rejected with a message that names the file and the
key; nothing half-parsed is ever used. Limits that the law or the hardware imposes live in the field
metadata (``min``/``max``/``choices``) so the check and the documentation cannot drift apart. The
loader is :mod:`base.config`; the sections of the parts (ui, comms, sensors) live beside their code and
are assembled here, typed, because this is the program that owns them all.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path

from base.config import dumps_sections, option, parse_sections, parse_toml, read_config_text, replace_section
from base.errors import ConfigError
from base.legal import PRE_EVENT_MODES
from comms.settings import CommandsConfig, MqttSettings, UplinkSettings
from comms.telemetry import TelemetryConfig
from ui.settings import ControlsConfig, DisplayConfig, SignalsConfig, pin_conflicts, signal_problems

from .checkout_settings import CheckoutConfig
from .policy import PolicyConfig, profile_problems, with_profile_defaults
from .sensors import BatteryConfig

#: The legal ceiling for the pre-event window. A deployment may set less (0 disables pre-recording),
#: never more: some German states do not allow pre-recording at all, none allows minutes of it.
PRE_EVENT_MAX_SECONDS = 120


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
class AudioConfig:
    """Sound recorded with the pictures. LAW IS POLICY: off unless the city's data-protection officer agrees."""

    enabled: bool = _opt(False, "Record sound with the pictures (§ 15c PolG NRW: 'Bild- und Tonaufzeichnungen').")
    device: str = _opt("default", "ALSA capture device of the microphone ('arecord -L' lists them).")
    codec: str = _opt("aac", "Audio codec: AAC-LC, mono.", choices=("aac",))
    bitrate: int = _opt(48_000, "Audio bitrate in bit/s.", min=16_000, max=128_000)
    gain_db: float = _opt(0.0, "Gain applied to the microphone signal in dB (only 0 in this version).",
                          min=-20.0, max=30.0)

    def problems(self):
        if self.gain_db != 0:
            yield "gain_db", (f"= {self.gain_db:g} is not available in this version: picamera2's audio path applies "
                              "no gain; set the microphone's capture level with 'alsamixer -c N' (F4: capture) "
                              "and 'sudo alsactl store', and keep gain_db = 0")


@dataclass(frozen=True)
class RecordingConfig:
    pre_event_seconds: float = _opt(
        30.0, f"Pre-event window held in RAM (0 disables pre-recording; at most {PRE_EVENT_MAX_SECONDS}).",
        min=0.0, max=float(PRE_EVENT_MAX_SECONDS))
    pre_event_mode: str = _opt(
        "standby", "When the pre-event ring fills: standby (in every standby), announced (only while the front "
                   "display shows the person the picture), off (never).", choices=PRE_EVENT_MODES)
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

    def problems(self):
        if self.critical_free_mib > self.warn_free_mib:
            yield "critical_free_mib", f"({self.critical_free_mib:g}) must not exceed warn_free_mib ({self.warn_free_mib:g})"


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
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    recording: RecordingConfig = field(default_factory=RecordingConfig)
    evidence: EvidenceConfig = field(default_factory=EvidenceConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    battery: BatteryConfig = field(default_factory=BatteryConfig)
    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig)
    display: DisplayConfig = field(default_factory=DisplayConfig)
    controls: ControlsConfig = field(default_factory=ControlsConfig)
    signals: SignalsConfig = field(default_factory=SignalsConfig)
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    uplink: UplinkSettings = field(default_factory=UplinkSettings)
    commands: CommandsConfig = field(default_factory=CommandsConfig)
    checkout: CheckoutConfig = field(default_factory=CheckoutConfig)
    #: Where the values came from, for messages; not a key of the file.
    source: str = field(default="<embedded defaults>", compare=False, metadata={"internal": True})

    def __post_init__(self):
        for key, sentence in pin_conflicts(self.display, self.controls):  # rules across sections
            raise ConfigError(f"{self.source}: controls.{key} {sentence}")
        for key, sentence in signal_problems(self.signals, self.controls):
            raise ConfigError(f"{self.source}: signals.{key} {sentence}")
        for key, sentence in profile_problems(self):  # the legal profile's rules, last: they name the law
            raise ConfigError(f"{self.source}: {key} {sentence}")



def sections() -> list[tuple[str, type]]:
    """The (name, dataclass) pairs that make up the file, in order."""
    hints = typing.get_type_hints(Config)
    return [(f.name, hints[f.name]) for f in dataclasses.fields(Config) if not f.metadata.get("internal")]


def load(path: str | os.PathLike | None = None) -> Config:
    """Read and validate a config file; ``None`` gives the embedded defaults."""
    if path is None:
        return Config()
    return loads(read_config_text(path), source=str(path))


def loads(text: str, source: str = "<string>") -> Config:
    """Parse TOML text into a :class:`Config`; errors name ``source`` and the key."""
    return from_dict(parse_toml(text, source), source)


def from_dict(data: dict, source: str = "<dict>") -> Config:
    """A :class:`Config` from parsed TOML; the legal profile (policy.profile) fills in the keys left out."""
    data = with_profile_defaults(data, Config())
    return Config(**parse_sections(data, dict(sections()), source), source=source)


def replace(config: Config, section: str, **changes) -> Config:
    """A copy of ``config`` with some keys of one section changed, validated like the file."""
    new_section = replace_section(getattr(config, section), section, config.source, **changes)
    return dataclasses.replace(config, **{section: new_section})


def dumps(config: Config) -> str:
    """The configuration as TOML that :func:`loads` reads back to an equal value."""
    return dumps_sections({name: getattr(config, name) for name, _ in sections()})


def example_path() -> Path:
    """The documented example file shipped with the package (every key, its default, why)."""
    return Path(__file__).with_name("agent.example.toml")
