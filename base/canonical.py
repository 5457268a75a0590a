"""Canonical JSON: the one byte form that is signed and hashed (manifests, audit lines, protocol, commands).

Sorted keys, no spaces, ASCII only, no NaN or infinities: for the value types we use this is the JSON
Canonicalization Scheme (RFC 8785), so any implementation reproduces the same bytes from the same values.
"""

from __future__ import annotations

import json


def canonical_json(doc) -> bytes:
    """``doc`` in canonical form (raises ValueError for NaN or infinity)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii")
