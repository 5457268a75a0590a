"""Signed receipts: the back office's statement that it durably holds one exact segment.

A receipt is the only thing that lets a device delete evidence, so it names everything that must
match: device, stem and seq, the SHA-256 of the ciphertext and of the manifest. Format, like the
manifest's: the file is ``canonical(document) + "\\n"`` with the Ed25519 signature inside, in
``"signature"``, over ``DOMAIN + canonical(document without "signature")``. The domain prefix keeps a
receipt signature from ever being valid for anything else signed with an Ed25519 key.

``chain`` is the receiver's view of the hash chain *when it stored the segment*: ``first`` (seq 1),
``linked`` (the stored predecessor's manifest hash matches), ``pending`` (the predecessor has not
arrived yet), ``broken`` (the stored predecessor is a different manifest). It informs; it never
changes whether the device may delete, because the segment is stored either way. ``bodycam verify``
on the store is the authority on the chain.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field

from base.errors import BodycamError
from base.canonical import canonical_json as canonical
from base.ids import is_id, is_stem
from base.utctime import iso_utc

from .keys import ReceiptPublicKey, ReceiptSigningKey


FORMAT = "bodycam-receipt/1"
DOMAIN = b"bodycam-receipt-v1\n"
CHAIN_STATES = ("first", "linked", "pending", "broken")
MAX_RECEIPT_BYTES = 8 * 1024

_HEX64 = re.compile(r"[0-9a-f]{64}")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


FIELDS = {
    "format": lambda v: v == FORMAT,
    "device_id": is_id,
    "site": is_id,
    "stem": is_stem,
    "seq": lambda v: _is_int(v) and v >= 1,
    "incident_id": lambda v: isinstance(v, str) and 0 < len(v) <= 256,
    "ciphertext_sha256": lambda v: isinstance(v, str) and _HEX64.fullmatch(v),
    "ciphertext_bytes": lambda v: _is_int(v) and v >= 0,
    "manifest_sha256": lambda v: isinstance(v, str) and _HEX64.fullmatch(v),
    "received_time": lambda v: isinstance(v, str) and _TIME.fullmatch(v),
    "receiver_id": lambda v: isinstance(v, str) and 0 < len(v) <= 128,
    "chain": lambda v: v in CHAIN_STATES,
    "key_id": lambda v: isinstance(v, str) and re.fullmatch(r"[0-9a-f]{16}", v),
    "signature": lambda v: isinstance(v, str) and len(v) == 88,
}


class ReceiptError(BodycamError):
    """A receipt is malformed, not signed by the back office's receipt key, or names another segment."""


@dataclass(frozen=True)
class Receipt:
    device_id: str
    site: str
    stem: str
    seq: int
    incident_id: str
    ciphertext_sha256: str
    ciphertext_bytes: int
    manifest_sha256: str
    received_time: str
    receiver_id: str
    chain: str
    key_id: str
    raw: bytes = field(repr=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()


def sign_receipt(key: ReceiptSigningKey, *, device_id: str, site: str, stem: str, seq: int, incident_id: str,
                 ciphertext_sha256: str, ciphertext_bytes: int, manifest_sha256: str, receiver_id: str,
                 chain: str, received_at: float) -> bytes:
    """The receipt file's bytes, signed; raises :class:`ReceiptError` for a value outside the format."""
    doc = {"format": FORMAT, "device_id": device_id, "site": site, "stem": stem, "seq": seq,
           "incident_id": incident_id, "ciphertext_sha256": ciphertext_sha256, "ciphertext_bytes": ciphertext_bytes,
           "manifest_sha256": manifest_sha256, "received_time": iso_utc(received_at), "receiver_id": receiver_id,
           "chain": chain, "key_id": key.key_id}
    for name, check in FIELDS.items():
        if name != "signature" and not check(doc[name]):
            raise ReceiptError(f"cannot sign a receipt: {name} = {doc[name]!r} is not a valid value")
    doc["signature"] = base64.b64encode(key.sign(DOMAIN + canonical(doc))).decode("ascii")
    return canonical(doc) + b"\n"


def parse_receipt(data: bytes) -> tuple[Receipt, dict]:
    """Structure only; see :func:`verify_receipt` for the signature."""
    if len(data) > MAX_RECEIPT_BYTES:
        raise ReceiptError(f"receipt of {len(data)} bytes is larger than any valid receipt")
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ReceiptError("receipt is not valid JSON") from None
    if not isinstance(doc, dict):
        raise ReceiptError("receipt is not a JSON object")
    if doc.get("format") != FORMAT:
        raise ReceiptError(f"receipt format {str(doc.get('format'))[:40]!r} is not {FORMAT!r}")
    if set(doc) != set(FIELDS):
        raise ReceiptError(f"receipt fields differ from {FORMAT} (missing or unknown: "
                           f"{', '.join(sorted(set(doc) ^ set(FIELDS)))[:120]})")
    for name, check in FIELDS.items():
        if not check(doc[name]):
            raise ReceiptError(f"receipt field {name!r} has an invalid value")
    if data != canonical(doc) + b"\n":
        raise ReceiptError("receipt is not in canonical form")
    values = {k: v for k, v in doc.items() if k not in ("format", "signature")}
    return Receipt(**values, raw=bytes(data)), doc


def verify_receipt(data: bytes, public_key: ReceiptPublicKey) -> Receipt:
    """Parse a receipt and check it is signed by the back office's receipt key; raises on any problem."""
    receipt, doc = parse_receipt(data)
    if receipt.key_id != public_key.key_id:
        raise ReceiptError(f"receipt was signed with key {receipt.key_id}, not with the configured receipt key "
                           f"{public_key.key_id}")
    try:
        signature = base64.b64decode(doc.pop("signature"), validate=True)
    except (binascii.Error, ValueError):
        raise ReceiptError("receipt signature is not valid base64") from None
    if not public_key.verify(signature, DOMAIN + canonical(doc)):
        raise ReceiptError("receipt signature does not verify (forged, altered, or signed by another key)")
    return receipt
