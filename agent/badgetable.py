"""The badge table: which NFC badge belongs to which pseudonymous officer id, as the back office provides it.

A TOML file (``checkout.badges``, default ``/etc/bodycam/badges.toml``), written by the back office's
provisioning (like the keys and certificates) and readable by the agent only::

    # badge UID (hex, as the reader reports it) = pseudonymous officer id
    [badges]
    "04a1b2c3d4e5f6" = "ko-17"
    "08:11:22:33" = "ko-23"

It maps a badge to a pseudonym and nothing else: no names, no personnel numbers. Who is behind a
pseudonym is known only in the back office (docs/BACKOFFICE.md), so a lost device tells nobody who
carried it. A separate file rather than a config section, because badges change with staff while the
config changes with the device, and the back office owns the one and IT the other. The file is read
again whenever it changed (size or modification time), so a new badge works without a restart.
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from pathlib import Path

from base.errors import ConfigError
from base.ids import OFFICER_ID_RULE, is_officer_id

logger = logging.getLogger(__name__)

#: ISO 14443A UIDs are 4, 7 or 10 bytes.
UID_BYTES = (4, 7, 10)
_SEPARATORS = re.compile(r"[:\s-]")
_HEX = re.compile(r"[0-9a-f]+")


class BadgeTableError(ConfigError):
    """The badge table cannot be read or holds something that is not a badge and an officer id."""


def normalise_uid(text: str) -> str | None:
    """A UID as lower-case hex without separators, or None when ``text`` is not 4, 7 or 10 bytes of hex."""
    if not isinstance(text, str):
        return None
    uid = _SEPARATORS.sub("", text).lower()
    if not _HEX.fullmatch(uid) or len(uid) // 2 not in UID_BYTES or len(uid) % 2:
        return None
    return uid


def parse_badges(text: str, source: str) -> dict[str, str]:
    """UID → officer id from the table's text; every wrong entry is an error naming it."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadgeTableError(f"{source}: not valid TOML: {exc}") from None
    if set(data) - {"badges"} or not isinstance(data.get("badges", {}), dict):
        raise BadgeTableError(f"{source}: a badge table holds exactly one [badges] table")
    table: dict[str, str] = {}
    for key, officer in data.get("badges", {}).items():
        uid = normalise_uid(key)
        if uid is None:
            raise BadgeTableError(f"{source}: badge {key!r} is not a UID (4, 7 or 10 bytes in hex)")
        if not is_officer_id(officer):
            raise BadgeTableError(f"{source}: badge {key!r}: officer {officer!r} must be a pseudonymous id, "
                                  f"{OFFICER_ID_RULE}")
        if uid in table:
            raise BadgeTableError(f"{source}: badge {key!r} is listed twice")
        table[uid] = officer
    return table


class BadgeTable:
    """The file at ``path``, read when first asked and again whenever it changed."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._table: dict[str, str] = {}

    def __len__(self) -> int:
        """How many badges the table listed when last read."""
        return len(self._table)

    def officer(self, uid: str) -> str | None:
        """The officer id of badge ``uid`` (lower-case hex), or None for a badge the table does not list.

        Raises :class:`BadgeTableError` when the file is missing or wrong; the previous good contents are
        not used then, so a damaged table never assigns by stale data.
        """
        self._refresh()
        return self._table.get(uid)

    def _refresh(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise BadgeTableError(f"{self.path}: no badge table (the back office provisions it; "
                                  "checkout.badges names it)") from None
        except OSError as exc:
            raise BadgeTableError(f"{self.path}: cannot read the badge table ({exc.strerror})") from None
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        self._stamp, self._table = None, {}
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise BadgeTableError(f"{self.path}: cannot read the badge table ({exc})") from None
        self._table = parse_badges(text, str(self.path))
        self._stamp = stamp
        logger.info("badge table %s: %d badge(s)", self.path, len(self._table))
