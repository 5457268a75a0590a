"""The names that become topics, file names and manifest fields: device, site, segment and officer ids.

One rule each, used by the config loader, the sealer, the spool, the wire protocol and the receiver, so
a name one of them accepts is never refused (or, worse, accepted differently) by another.
"""

from __future__ import annotations

import re

#: A device, site or receiver id: lower-case ASCII letters, digits, '-' and '_', 1-64 characters.
ID_PATTERN = r"[a-z0-9_-]{1,64}"
ID_RULE = "1-64 characters of a-z, 0-9, '-' or '_'"
#: A segment's stem: ``<device>-<seq, 10 digits>`` (e.g. ``kod-07-0000000042``).
STEM_PATTERN = ID_PATTERN + r"-\d{10}"

#: An officer's pseudonymous id (check-out): what the manifests, the audit log and the display carry, and the
#: officer's user name in the back office. Short, so the display shows it whole; a pseudonym, never a name.
OFFICER_ID_PATTERN = r"[a-z0-9][a-z0-9_-]{0,15}"
OFFICER_ID_RULE = "1-16 characters of a-z, 0-9, '-' or '_', starting with a letter or digit"

_ID = re.compile(ID_PATTERN)
_STEM = re.compile(STEM_PATTERN)
_OFFICER_ID = re.compile(OFFICER_ID_PATTERN)


def is_id(value: object) -> bool:
    """True for a valid device, site or receiver id (any other type is simply not one)."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def is_stem(value: object) -> bool:
    """True for a valid segment stem ``<device>-<10-digit seq>``."""
    return isinstance(value, str) and _STEM.fullmatch(value) is not None


def is_officer_id(value: object) -> bool:
    """True for a valid pseudonymous officer id (any other type is simply not one)."""
    return isinstance(value, str) and _OFFICER_ID.fullmatch(value) is not None


def stem(device: str, seq: int) -> str:
    """The stem of segment ``seq`` of ``device``: every file and message names a segment by it."""
    return f"{device}-{seq:010d}"
