"""Typed values from the environment, with a sentence naming the variable when one is wrong.

The settings are read once at start; a bad value stops the program with that sentence (``bodycam-office``
prints it instead of a traceback), rather than running with a guess.
"""

from __future__ import annotations

import os

from base.errors import BodycamError


class SettingError(BodycamError):
    """An environment variable holds a value this program cannot use."""


def env_int(name: str, default: int, *, low: int, high: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise SettingError(f"{name}={text!r} is not a whole number") from None
    if not low <= value <= high:
        raise SettingError(f"{name}={value} is out of range ({low} to {high})")
    return value


def env_flag(name: str) -> bool:
    text = os.environ.get(name, "").strip().lower()
    if text in ("", "0", "no", "false", "off"):
        return False
    if text in ("1", "yes", "true", "on"):
        return True
    raise SettingError(f"{name}={text!r}: use 1 or 0")


def env_list(name: str, default: list[str]) -> list[str]:
    text = os.environ.get(name, "")
    items = [item.strip() for item in text.split(",") if item.strip()]
    return items or list(default)


def env_secret(name: str, file_name: str) -> str:
    """A secret given directly (``name``) or as a file (``file_name``, e.g. a systemd credential)."""
    value = os.environ.get(name, "")
    path = os.environ.get(file_name, "")
    if value or not path:
        return value
    try:
        with open(path, encoding="utf-8") as f:
            secret = f.read().strip()
    except OSError as exc:
        raise SettingError(f"{file_name}={path!r} cannot be read: {exc.strerror}") from None
    if not secret:
        raise SettingError(f"{file_name}={path!r} is empty")
    return secret


def env_zone(name: str, default: str) -> str:
    """An IANA time zone name (``Europe/Berlin``)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    zone = os.environ.get(name, "").strip() or default
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingError(f"{name}={zone!r} is not a time zone (e.g. Europe/Berlin)") from None
    return zone
