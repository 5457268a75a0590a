"""The config loader: TOML tables parsed once into frozen, typed dataclasses ("sections").

A section is a frozen dataclass whose fields are declared with :func:`option` (default, one-line doc,
limits). The loader checks types and limits from those declarations, then asks the section itself for
rules across its keys (:meth:`problems`), so every section validates itself the same way and each
message names the file and the key. Sections live beside the code they configure; the program that
assembles them (the device's ``agent.config.Config``, the back office's settings) lists them with
their types, so readers and type checkers see ``cfg.mqtt.host``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import typing
from dataclasses import field
from pathlib import Path
from typing import Iterator, Protocol

from .errors import ConfigError
from .ids import ID_RULE, is_id


def option(default, doc, **limits):
    """A config key: its default, a one-line doc, and limits (min, max, choices, even, pattern="id")."""
    return field(default=default, metadata={"doc": doc, **limits})


class SelfChecking(Protocol):
    def problems(self) -> Iterator[tuple[str, str]]:
        """Yield ``(key, sentence)`` for each rule across keys that this section's values break."""


def read_config_text(path: str | os.PathLike, what: str = "config file") -> str:
    """A config file's text, or a ConfigError that names the file and says what is wrong."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what} ({exc.strerror})") from None


def parse_toml(text: str, source: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None


def parse_sections(data: dict, sections: dict[str, type], source: str) -> dict[str, object]:
    """Every section of ``sections`` built from ``data`` (missing tables give defaults); unknown ones refused."""
    for key, value in data.items():
        if key not in sections:
            raise ConfigError(f"{source}: unknown section [{key}] (known: {', '.join(sections)})")
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: '{key}' must be a table [{key}], not a {_tname(value)}")
    return {name: parse_section(cls, data.get(name, {}), name, source) for name, cls in sections.items()}


def parse_section(cls, table: dict, section: str, source: str = "<dict>"):
    """Validate one section's table into ``cls``: types, limits, then the section's own cross-key rules."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in table.items():
        where = f"{source}: {section}.{key}"
        if key not in fields:
            raise ConfigError(f"{where}: unknown key (known in [{section}]: {', '.join(fields)})")
        values[key] = _check(where, value, hints[key], fields[key].metadata)
    built = cls(**values)
    for key, sentence in getattr(built, "problems", _no_problems)():
        raise ConfigError(f"{source}: {section}.{key} {sentence}")
    return built


def replace_section(built, section: str, source: str, **changes):
    """A copy of a section with some keys changed, validated exactly like the file."""
    current = dataclasses.asdict(built)
    current.update(changes)
    return parse_section(type(built), current, section, source)


def _no_problems():
    return iter(())


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
    if meta.get("pattern") == "id" and not is_id(value):
        raise ConfigError(f"{where} = {value!r} must be {ID_RULE} (it becomes part of MQTT topics and file names)")
    return value


def _tname(value) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "list",
            dict: "table"}.get(type(value), type(value).__name__)


def dumps_sections(sections: dict[str, object]) -> str:
    """Sections as TOML that :func:`parse_sections` reads back to equal values."""
    lines = []
    for name, built in sections.items():
        lines.append(f"[{name}]")
        for key, value in dataclasses.asdict(built).items():
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
