"""The signed tombstone the back office leaves where it deleted an incident (``incident.tombstone.json``).

It names what was removed (per segment: stem, seq, manifest and ciphertext SHA-256, size, times), under
which rule, decided by whom, and when, and is signed with the back office's ``office.key``. ``bodycam
verify --office-key office.pub`` reads it: a deletion then reads "deleted on D under rule R, decided by
A and B" instead of a gap, but only when the signature verifies *and* the chain agrees -- the manifest
after a deleted segment names that segment's manifest hash, so a tombstone cannot cover a segment other
than the one the device sealed there.

Canonical JSON (:mod:`base.canonical`) plus ``signature``: Ed25519 over ``DOMAIN`` + the canonical bytes
without it; the domain keeps a tombstone signature from ever passing as an audit line of the same key.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from base.canonical import canonical_json
from base.errors import BodycamError

FORMAT = "bodycam-tombstone-v1"
DOMAIN = b"bodycam-tombstone-v1\n"
FILE_NAME = "incident.tombstone.json"
_FIELDS = {"format", "tombstone_id", "site", "device_id", "incident_id", "start", "end", "rule", "decided_by",
           "deleted_at", "segments", "signing_key_id", "signature"}
_SEGMENT_FIELDS = {"stem", "seq", "manifest_sha256", "ciphertext_sha256", "ciphertext_bytes", "start", "end"}


class TombstoneError(BodycamError):
    """A tombstone file is malformed or its signature does not verify with the office key."""


@dataclass(frozen=True)
class Tombstone:
    doc: dict

    @property
    def device_id(self) -> str:
        return self.doc["device_id"]

    @property
    def incident_id(self) -> str:
        return self.doc["incident_id"]

    @property
    def segments(self) -> list[dict]:
        return self.doc["segments"]

    def message(self) -> str:
        return (f"device {self.device_id}: incident {self.incident_id} ({len(self.segments)} segment(s), "
                f"{self.doc['start']} to {self.doc['end']}) deleted on {self.doc['deleted_at']} under rule "
                f"{self.doc['rule']!r}, {deciders(self.doc['decided_by'])}")


def deciders(decided_by: list[str]) -> str:
    """Who decided a deletion, for people: "approved by A and B" for a four-eyes decision (proposer and
    approver), "decided by X" for one actor (the retention timer applying the site's rule)."""
    if len(decided_by) > 1:
        return f"approved by {' and '.join(decided_by)}"
    return f"decided by {' and '.join(decided_by) or 'nobody named'}"


def sign_tombstone(signer, fields: dict) -> bytes:
    """The file's bytes: ``fields`` (everything but the key id and signature) signed with ``signer``."""
    doc = {**fields, "format": FORMAT, "signing_key_id": signer.key_id}
    signature = base64.b64encode(signer.sign(DOMAIN + canonical_json(doc))).decode("ascii")
    return canonical_json({**doc, "signature": signature}) + b"\n"


def read_tombstone(data: bytes, office_public_key, source: str = "<tombstone>") -> Tombstone:
    """Parse and check a tombstone; raises :class:`TombstoneError` naming ``source`` and what is wrong."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise TombstoneError(f"{source}: not a JSON tombstone") from None
    if not isinstance(doc, dict) or set(doc) != _FIELDS or doc.get("format") != FORMAT:
        raise TombstoneError(f"{source}: not a {FORMAT} tombstone (wrong fields or format)")
    segments = doc["segments"]
    if (not isinstance(segments, list) or not all(isinstance(s, dict) and set(s) == _SEGMENT_FIELDS for s in segments)
            or not isinstance(doc["decided_by"], list)):
        raise TombstoneError(f"{source}: the tombstone's segment list or deciders are malformed")
    body = {k: v for k, v in doc.items() if k != "signature"}
    try:
        signature = base64.b64decode(doc["signature"], validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise TombstoneError(f"{source}: the tombstone's signature is not base64") from None
    if doc["signing_key_id"] != office_public_key.key_id or not office_public_key.verify(
            signature, DOMAIN + canonical_json(body)):
        raise TombstoneError(f"{source}: the tombstone's signature does not verify with the office key "
                             f"{office_public_key.key_id} (forged, edited, or signed by another key)")
    return Tombstone(doc)
