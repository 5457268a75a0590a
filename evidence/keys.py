"""Key files: create and read the municipality's age evidence key and the device's Ed25519 signing key.

Two key pairs with different owners:

* The **evidence key** (age X25519) belongs to the municipality. ``evidence.key`` is a stock age identity
  file (``age -d -i evidence.key`` opens a segment) and never goes onto a device; the device only holds
  ``evidence.pub``, the ``age1...`` recipient, so a stolen device cannot decrypt what it recorded.
* The **device key** (Ed25519) belongs to one device. ``device.key`` (PKCS#8 PEM) signs manifests;
  ``device.pub`` is one line, ``ed25519:<base64 of the 32 raw bytes>`` optionally followed by the device
  id, that IT enrols with the back office so anyone can verify a segment without a private key.

Private key files are created with mode 0600 and refused on load when group or others can read them.
An existing key file is never replaced unless ``force=True``: losing the evidence key loses the evidence.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pyrage import IdentityError, RecipientError, x25519

from base.durable import write_atomically
from base.errors import BodycamError, StorageError
from base.ids import is_id
from base.utctime import iso_utc

logger = logging.getLogger(__name__)

EVIDENCE_KEY = "evidence.key"
EVIDENCE_PUB = "evidence.pub"
DEVICE_KEY = "device.key"
DEVICE_PUB = "device.pub"

DEVICE_PUB_PREFIX = "ed25519:"
_IDENTITY_PREFIX = "AGE-SECRET-KEY-1"
_RECIPIENT_PREFIX = "age1"
_KEY_ID_HEX = 16  # 64 bits of SHA-256: names a key among the enrolled ones; security rests on the signature


class KeyFileError(BodycamError):
    """A key file is missing, unreadable, malformed, too widely readable, or would be overwritten."""


class _Ed25519Verifier:
    """verify() for a public-key holder with an Ed25519 ``key`` (device keys, receipt keys)."""

    def verify(self, signature: bytes, data: bytes) -> bool:
        try:
            self.key.verify(signature, data)
        except InvalidSignature:
            return False
        return True


class _Ed25519Signer:
    """sign() and key_id for a private-key holder with ``private`` and ``public`` halves."""

    @property
    def key_id(self) -> str:
        return self.public.key_id

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)


@dataclass(frozen=True)
class DevicePublicKey(_Ed25519Verifier):
    """An enrolled device's verification key; ``device_id`` (if enrolled with one) binds it to that device."""

    key: Ed25519PublicKey = field(repr=False)
    key_id: str
    device_id: str | None = None
    source: str = ""

    def raw(self) -> bytes:
        return self.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def to_line(self) -> str:
        """The one-line enrolment form written to ``device.pub``."""
        line = DEVICE_PUB_PREFIX + base64.b64encode(self.raw()).decode("ascii")
        return f"{line} {self.device_id}" if self.device_id else line


@dataclass(frozen=True)
class DeviceSigningKey(_Ed25519Signer):
    """The device's private signing key with its public half."""

    private: Ed25519PrivateKey = field(repr=False)
    public: DevicePublicKey


@dataclass(frozen=True)
class EvidenceKeyFiles:
    identity_path: Path
    recipient_path: Path
    recipient: str
    key_id: str


@dataclass(frozen=True)
class DeviceKeyFiles:
    key_path: Path
    pub_path: Path
    public: DevicePublicKey


# --- key ids ---------------------------------------------------------------------------------------

def device_key_id(public_key: Ed25519PublicKey) -> str:
    """Short fingerprint of a device key: the first 16 hex digits of SHA-256 over the 32 raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:_KEY_ID_HEX]


def recipient_bytes(recipient: x25519.Recipient | str) -> bytes:
    """The 32-byte X25519 public key inside an ``age1...`` recipient (Bech32, BIP 173, checksum checked)."""
    text = str(recipient)
    hrp, sep, data = text.rpartition("1")
    values = [_BECH32.find(c) for c in data]
    if hrp != "age" or not sep or -1 in values or len(values) < 6 or _bech32_polymod(hrp, values) != 1:
        raise KeyFileError(f"{text[:20]}... is not a valid age recipient (bad Bech32 encoding or checksum)")
    acc = bits = 0
    out = bytearray()
    for v in values[:-6]:
        acc, bits = (acc << 5) | v, bits + 5
        if bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
    if len(out) != 32 or bits >= 5 or acc & ((1 << bits) - 1):
        raise KeyFileError(f"{text[:20]}... is not a valid age recipient (wrong key length)")
    return bytes(out)


_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _bech32_polymod(hrp: str, values: list[int]) -> int:
    chk = 1
    for v in [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp] + values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i, g in enumerate((0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)):
            chk ^= g if (top >> i) & 1 else 0
    return chk


def recipient_key_id(recipient: x25519.Recipient | str) -> str:
    """Short fingerprint of an age recipient: the first 16 hex digits of SHA-256 over its ``age1...`` text."""
    return hashlib.sha256(str(recipient).encode("ascii")).hexdigest()[:_KEY_ID_HEX]


# --- generation ------------------------------------------------------------------------------------

def generate_evidence_keys(out_dir: str | os.PathLike, *, force: bool = False) -> EvidenceKeyFiles:
    """Create ``evidence.key`` (0600, stock age identity format) and ``evidence.pub`` in ``out_dir``."""
    out = Path(out_dir)
    identity = x25519.Identity.generate()
    recipient = str(identity.to_public())
    created = iso_utc(time.time(), millis=False)
    identity_text = f"# created: {created}\n# public key: {recipient}\n{identity}\n"
    key_path, pub_path = out / EVIDENCE_KEY, out / EVIDENCE_PUB
    _write_key_files([(key_path, identity_text.encode("ascii"), 0o600),
                      (pub_path, f"{recipient}\n".encode("ascii"), 0o644)], force=force)
    logger.info("created evidence key pair %s (recipient %s)", key_path, recipient)
    return EvidenceKeyFiles(key_path, pub_path, recipient, recipient_key_id(recipient))


def generate_device_key(out_dir: str | os.PathLike, *, device_id: str | None = None,
                        force: bool = False) -> DeviceKeyFiles:
    """Create ``device.key`` (0600, PKCS#8 PEM) and ``device.pub`` (one enrolment line) in ``out_dir``."""
    if device_id is not None and not is_id(device_id):
        raise KeyFileError(f"device id {device_id!r} must be 1-64 characters of a-z, 0-9, '-' or '_'")
    out = Path(out_dir)
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = _device_public(private.public_key(), device_id, str(out / DEVICE_PUB))
    key_path, pub_path = out / DEVICE_KEY, out / DEVICE_PUB
    _write_key_files([(key_path, pem, 0o600),
                      (pub_path, f"{public.to_line()}\n".encode("ascii"), 0o644)], force=force)
    logger.info("created device signing key %s (key id %s)", key_path, public.key_id)
    return DeviceKeyFiles(key_path, pub_path, public)


def _write_key_files(files: list[tuple[Path, bytes, int]], *, force: bool) -> None:
    """Write a key pair, refusing before writing anything if one file exists and ``force`` is false."""
    for path, _, _ in files:
        if not path.parent.is_dir():
            raise KeyFileError(f"{path.parent}: output directory does not exist; create it first")
        if not force and (path.exists() or path.is_symlink()):
            raise KeyFileError(f"{path} already exists; refusing to overwrite a key (use --force to replace it, "
                               "which loses the old key)")
    for path, data, mode in files:
        _write_file(path, data, mode, force=force)


def _write_file(path: Path, data: bytes, mode: int, *, force: bool) -> None:
    """Write with the final mode from the first byte (no window where a private key is world-readable)."""
    try:
        write_atomically(path, data, mode=mode, replace=force, what="writing a key file")
    except FileExistsError:
        raise KeyFileError(f"{path} already exists; refusing to overwrite a key") from None
    except StorageError as exc:
        raise KeyFileError(f"{path}: cannot write key file ({exc})") from None


# --- evidence key (age) ----------------------------------------------------------------------------

def load_evidence_identities(path: str | os.PathLike) -> list[x25519.Identity]:
    """Read an age identity file (``evidence.key`` or one made by ``age-keygen``); back office only."""
    path = Path(path)
    text = _read_private(path)
    identities = []
    claimed = None
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line.startswith("# public key:"):
            claimed = line.split(":", 1)[1].strip()
            continue
        if not line or line.startswith("#"):
            continue
        if not line.startswith(_IDENTITY_PREFIX):
            raise KeyFileError(f"{path}: line {number} is not an age identity (expected AGE-SECRET-KEY-1...)")
        try:
            identities.append(x25519.Identity.from_str(line))
        except IdentityError:
            raise KeyFileError(f"{path}: line {number} is a damaged age identity (bad checksum or length)") from None
    if not identities:
        raise KeyFileError(f"{path}: holds no age identity (expected a line AGE-SECRET-KEY-1...)")
    if claimed is not None and len(identities) == 1 and str(identities[0].to_public()) != claimed:
        raise KeyFileError(f"{path}: the '# public key' comment does not match the identity in the file; "
                           "the file was edited or mixed up")
    return identities


def parse_recipient(text: str, source: str = "<string>") -> x25519.Recipient:
    """One ``age1...`` recipient string."""
    text = text.strip()
    if not text.startswith(_RECIPIENT_PREFIX):
        raise KeyFileError(f"{source}: {text[:20]!r} is not an age recipient (expected age1...)")
    try:
        return x25519.Recipient.from_str(text)
    except RecipientError:
        raise KeyFileError(f"{source}: damaged age recipient {text[:20]}... (bad checksum or length)") from None


def load_recipients(sources: Iterable[str | os.PathLike]) -> list[x25519.Recipient]:
    """Recipients from ``age1...`` strings and/or recipient files (one per line, ``#`` comments).

    The sealer encrypts to all of them (e.g. the municipality's key plus an escrow key); an empty result
    is an error, because a segment encrypted to nobody is lost.
    """
    recipients: list[x25519.Recipient] = []
    for src in sources:
        if isinstance(src, str) and src.strip().startswith(_RECIPIENT_PREFIX):
            recipients.append(parse_recipient(src, "recipient"))
            continue
        path = Path(src)
        text = _read_public(path)
        found = [(n, ln.strip()) for n, ln in enumerate(text.splitlines(), 1)
                 if ln.strip() and not ln.strip().startswith("#")]
        if not found:
            raise KeyFileError(f"{path}: recipient file holds no age1... recipient")
        recipients.extend(parse_recipient(line, f"{path}:{n}") for n, line in found)
    if not recipients:
        raise KeyFileError("no recipients configured; segments would be encrypted to nobody "
                           "(give at least the municipality's evidence.pub)")
    seen, unique = set(), []
    for r in recipients:
        if str(r) not in seen:
            seen.add(str(r))
            unique.append(r)
    return unique


# --- device key (Ed25519) --------------------------------------------------------------------------

def load_signing_key(path: str | os.PathLike, *, device_id: str | None = None) -> DeviceSigningKey:
    """Read ``device.key``; ``device_id`` is carried into the public half for messages and enrolment lines."""
    path = Path(path)
    data = _read_private(path).encode("ascii", errors="replace")
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise KeyFileError(f"{path}: the device key is password-protected; the agent needs an unencrypted key") \
            from None
    except ValueError:
        raise KeyFileError(f"{path}: not a readable PEM private key (damaged or wrong file)") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: is a {type(private).__name__.removeprefix('_')} key, "
                           "but the device key must be Ed25519")
    return DeviceSigningKey(private, _device_public(private.public_key(), device_id, str(path)))


def parse_device_public_key(line: str, source: str = "<string>") -> DevicePublicKey:
    """Parse ``ed25519:<base64> [device-id]``."""
    parts = line.split()
    if not parts or not parts[0].startswith(DEVICE_PUB_PREFIX) or len(parts) > 2:
        raise KeyFileError(f"{source}: not a device public key (expected 'ed25519:<base64> [device-id]')")
    try:
        raw = base64.b64decode(parts[0][len(DEVICE_PUB_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError(f"{source}: the device public key is not valid base64") from None
    if len(raw) != 32:
        raise KeyFileError(f"{source}: the device public key has {len(raw)} bytes; Ed25519 keys have 32")
    device_id = parts[1] if len(parts) == 2 else None
    if device_id is not None and not is_id(device_id):
        raise KeyFileError(f"{source}: device id {device_id!r} must be 1-64 characters of a-z, 0-9, '-' or '_'")
    return _device_public(Ed25519PublicKey.from_public_bytes(raw), device_id, source)


def load_device_public_keys(sources: Iterable[str | os.PathLike]) -> dict[str, DevicePublicKey]:
    """Enrolled device keys by key id, from ``device.pub`` files and/or directories of ``*.pub`` files.

    In a directory, every ``*.pub`` file (recursively) is read; age recipient files (``evidence.pub``)
    are skipped because they are not device keys. A file may list several devices, one per line.
    """
    keys: dict[str, DevicePublicKey] = {}
    for src in sources:
        path = Path(src)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*.pub") if p.is_file())
            in_dir = True
        else:
            files, in_dir = [path], False
        for file in files:
            text = _read_public(file)
            lines = [(n, ln.strip()) for n, ln in enumerate(text.splitlines(), 1)
                     if ln.strip() and not ln.strip().startswith("#")]
            if in_dir and lines and all(ln.startswith(_RECIPIENT_PREFIX) for _, ln in lines):
                logger.debug("%s: age recipient file, not a device key; skipped", file)
                continue
            if not lines:
                raise KeyFileError(f"{file}: holds no device public key")
            for n, line in lines:
                key = parse_device_public_key(line, f"{file}:{n}")
                other = keys.get(key.key_id)
                if other is not None and other.device_id != key.device_id:
                    raise KeyFileError(f"{key.source}: the same key is enrolled as device {other.device_id!r} "
                                       f"in {other.source} and as {key.device_id!r}; fix the enrolment")
                keys[key.key_id] = key
    if not keys:
        raise KeyFileError("no enrolled device public keys found (give device.pub files or a directory of them)")
    return keys


def _device_public(public: Ed25519PublicKey, device_id: str | None, source: str) -> DevicePublicKey:
    return DevicePublicKey(public, device_key_id(public), device_id, source)




# --- file access -----------------------------------------------------------------------------------

def _read_private(path: Path) -> str:
    """Read a private key file, refusing one that group or others may read."""
    st = _stat(path)
    if st.st_mode & 0o077:
        raise KeyFileError(f"{path}: permissions {stat.filemode(st.st_mode)} let other users read the private key; "
                           f"run 'chmod 600 {path}'")
    return _read_text(path)


def _read_public(path: Path) -> str:
    _stat(path)
    return _read_text(path)


def _stat(path: Path) -> os.stat_result:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise KeyFileError(f"{path}: key file not found") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot access key file ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise KeyFileError(f"{path}: is not a regular file")
    return st


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read key file ({exc.strerror})") from None
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise KeyFileError(f"{path}: is not a text key file (binary or damaged content)") from None


# --- receipt key (Ed25519, back office) -------------------------------------------------------------
#
# The back office's receiver signs every receipt with this key; devices hold only ``receipt.pub`` and
# delete a segment only after a receipt verifies with it. It is a key of its own, not a device key:
# its public line has a different prefix, so it can never be enrolled as a device by mistake (and a
# device key can never pass as the back office). It cannot decrypt anything.

RECEIPT_KEY = "receipt.key"
RECEIPT_PUB = "receipt.pub"
RECEIPT_PUB_PREFIX = "bodycam-receipt-ed25519:"


@dataclass(frozen=True)
class _PrefixedPublicKey(_Ed25519Verifier):
    """An Ed25519 public key of the back office, written as one line ``<PREFIX><base64>``."""

    PREFIX = ""
    key: Ed25519PublicKey = field(repr=False)
    key_id: str
    source: str = ""

    def to_line(self) -> str:
        raw = self.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return self.PREFIX + base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True)
class ReceiptPublicKey(_PrefixedPublicKey):
    """The back office's receipt verification key, as devices hold it."""

    PREFIX = RECEIPT_PUB_PREFIX


@dataclass(frozen=True)
class KeyPairFiles:
    """The two files of a new back-office key pair, and its public half."""

    key_path: Path
    pub_path: Path
    public: _PrefixedPublicKey


def _new_key_pair(out_dir: str | os.PathLike, key_name: str, pub_name: str, public_cls, force: bool, what: str):
    """A fresh Ed25519 pair: ``key_name`` (0600, PKCS#8 PEM) and ``pub_name`` (one prefixed line, 0644)."""
    out = Path(out_dir)
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    key_path, pub_path = out / key_name, out / pub_name
    public = public_cls(private.public_key(), device_key_id(private.public_key()), str(pub_path))
    _write_key_files([(key_path, pem, 0o600), (pub_path, f"{public.to_line()}\n".encode("ascii"), 0o644)],
                     force=force)
    logger.info("created %s %s (key id %s)", what, key_path, public.key_id)
    return key_path, pub_path, public


def _ed25519_from_base64(encoded: str, source: str, what: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError(f"{source}: the {what} is not valid base64") from None
    if len(raw) != 32:
        raise KeyFileError(f"{source}: the {what} has {len(raw)} bytes; Ed25519 keys have 32")
    return Ed25519PublicKey.from_public_bytes(raw)


def _load_one_line(path: str | os.PathLike, parse, what: str):
    """Read a public key file that holds exactly one key line (``#`` comments allowed) and parse it."""
    path = Path(path)
    lines = [(n, ln.strip()) for n, ln in enumerate(_read_public(path).splitlines(), 1)
             if ln.strip() and not ln.strip().startswith("#")]
    if len(lines) != 1:
        raise KeyFileError(f"{path}: must hold exactly one {what} line, found {len(lines)}")
    n, line = lines[0]
    return parse(line, f"{path}:{n}")


@dataclass(frozen=True)
class ReceiptSigningKey(_Ed25519Signer):
    """The receiver's private receipt key with its public half."""

    private: Ed25519PrivateKey = field(repr=False)
    public: ReceiptPublicKey


def generate_receipt_key(out_dir: str | os.PathLike, *, force: bool = False) -> KeyPairFiles:
    """Create ``receipt.key`` (0600, PKCS#8 PEM; stays with the receivers) and ``receipt.pub`` (for devices)."""
    return KeyPairFiles(*_new_key_pair(out_dir, RECEIPT_KEY, RECEIPT_PUB, ReceiptPublicKey, force,
                                          "receipt signing key"))


def load_receipt_signing_key(path: str | os.PathLike) -> ReceiptSigningKey:
    """Read ``receipt.key`` (refused when group or others may read it)."""
    private, public = _load_prefixed_signing_key(path, ReceiptPublicKey, "receipt key")
    return ReceiptSigningKey(private, public)


def _load_prefixed_signing_key(path: str | os.PathLike, public_cls, what: str):
    """An unencrypted Ed25519 PEM private key (mode 0600) and its public half as ``public_cls``."""
    path = Path(path)
    data = _read_private(path).encode("ascii", errors="replace")
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise KeyFileError(f"{path}: the {what} is password-protected; the back office needs an unencrypted "
                           "key") from None
    except ValueError:
        raise KeyFileError(f"{path}: not a readable PEM private key (damaged or wrong file)") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: is a {type(private).__name__.removeprefix('_')} key, "
                           f"but the {what} must be Ed25519")
    return private, public_cls(private.public_key(), device_key_id(private.public_key()), str(path))


def _parse_prefixed(line: str, source: str, public_cls, what: str, make: str):
    """``<PREFIX><base64>`` on one line as ``public_cls``; ``make`` says which command writes one."""
    text = line.strip()
    prefix = public_cls.PREFIX
    if not text.startswith(prefix) or len(text.split()) != 1:
        raise KeyFileError(f"{source}: not a{'n' if what[0] in 'aeiou' else ''} {what} (expected "
                           f"'{prefix}<base64>'; make one with '{make}')")
    key = _ed25519_from_base64(text[len(prefix):], source, what)
    return public_cls(key, device_key_id(key), source)


def parse_receipt_public_key(line: str, source: str = "<string>") -> ReceiptPublicKey:
    """Parse ``bodycam-receipt-ed25519:<base64>``."""
    return _parse_prefixed(line, source, ReceiptPublicKey, "receipt public key", "bodycam keys receiver")


def load_receipt_public_key(path: str | os.PathLike) -> ReceiptPublicKey:
    """Read ``receipt.pub``: exactly one receipt key line (``#`` comments allowed)."""
    return _load_one_line(path, parse_receipt_public_key, "receipt public key")


# --- command key (Ed25519, control room) -------------------------------------------------------------
#
# The control room signs remote commands with this key; devices hold only ``command.pub``. Like the
# receipt key it has a prefix of its own, so it can never be enrolled as a device (nor pass as the
# receiver). Files written before it had one carry the device prefix ``ed25519:`` and a ``command``
# comment: they still load, with a warning that says how to re-issue them.

COMMAND_KEY = "command.key"
COMMAND_PUB = "command.pub"
COMMAND_PUB_PREFIX = "bodycam-command-ed25519:"


@dataclass(frozen=True)
class CommandPublicKey(_PrefixedPublicKey):
    """The control room's command verification key, as devices hold it."""

    PREFIX = COMMAND_PUB_PREFIX


def generate_command_key(out_dir: str | os.PathLike, *, force: bool = False) -> KeyPairFiles:
    """Create ``command.key`` (0600, PKCS#8 PEM; the control room's) and ``command.pub`` (for devices)."""
    return KeyPairFiles(*_new_key_pair(out_dir, COMMAND_KEY, COMMAND_PUB, CommandPublicKey, force,
                                          "command signing key"))


def parse_command_public_key(line: str, source: str = "<string>") -> CommandPublicKey:
    """Parse ``bodycam-command-ed25519:<base64>``; the old ``ed25519:<base64> command`` loads with a warning."""
    parts = line.split()
    if len(parts) == 1 and parts[0].startswith(COMMAND_PUB_PREFIX):
        encoded = parts[0][len(COMMAND_PUB_PREFIX):]
    elif parts and parts[0].startswith(DEVICE_PUB_PREFIX) and parts[1:] in ([], ["command"]):
        logger.warning("%s: command key written with the device prefix '%s' (before key kinds had prefixes of "
                       "their own); it still works, but re-issue it with 'bodycam keys command' and install the "
                       "new command.pub on every device", source, DEVICE_PUB_PREFIX)
        encoded = parts[0][len(DEVICE_PUB_PREFIX):]
    else:
        raise KeyFileError(f"{source}: not a command public key (expected '{COMMAND_PUB_PREFIX}<base64>'; "
                           "make one with 'bodycam keys command')")
    key = _ed25519_from_base64(encoded, source, "command public key")
    return CommandPublicKey(key, device_key_id(key), source)


def load_command_public_key(path: str | os.PathLike) -> CommandPublicKey:
    """Read ``command.pub``: exactly one command key line (``#`` comments allowed)."""
    return _load_one_line(path, parse_command_public_key, "command public key")


# --- office key (Ed25519, back office's audit log) -----------------------------------------------------
#
# The back office signs its own audit log (catalog, holds, decisions, deletions) with this key. It is a
# kind of its own, so the office log can never pass as a device's log (nor as receipts or commands), and
# it cannot decrypt anything. ``office.pub`` goes to whoever checks the log (the data-protection officer).

OFFICE_KEY = "office.key"
OFFICE_PUB = "office.pub"
OFFICE_PUB_PREFIX = "bodycam-office-ed25519:"


@dataclass(frozen=True)
class OfficePublicKey(_PrefixedPublicKey):
    """The back office's audit verification key."""

    PREFIX = OFFICE_PUB_PREFIX


@dataclass(frozen=True)
class OfficeSigningKey(_Ed25519Signer):
    """The back office's private audit key with its public half."""

    private: Ed25519PrivateKey = field(repr=False)
    public: OfficePublicKey


def generate_office_key(out_dir: str | os.PathLike, *, force: bool = False) -> KeyPairFiles:
    """Create ``office.key`` (0600, PKCS#8 PEM; the back office's) and ``office.pub`` (for the log's checkers)."""
    return KeyPairFiles(*_new_key_pair(out_dir, OFFICE_KEY, OFFICE_PUB, OfficePublicKey, force,
                                         "office audit signing key"))


def load_office_signing_key(path: str | os.PathLike) -> OfficeSigningKey:
    """Read ``office.key`` (refused when group or others may read it)."""
    private, public = _load_prefixed_signing_key(path, OfficePublicKey, "office key")
    return OfficeSigningKey(private, public)


def parse_office_public_key(line: str, source: str = "<string>") -> OfficePublicKey:
    """Parse ``bodycam-office-ed25519:<base64>``."""
    return _parse_prefixed(line, source, OfficePublicKey, "office public key", "bodycam-office keys office")


def load_office_public_key(path: str | os.PathLike) -> OfficePublicKey:
    """Read ``office.pub``: exactly one office key line (``#`` comments allowed)."""
    return _load_one_line(path, parse_office_public_key, "office public key")


# --- the key kinds, in one table -----------------------------------------------------------------------

@dataclass(frozen=True)
class KeyKind:
    """One kind of key: who holds the private half, where the public half goes, how to tell it apart."""

    name: str
    private_file: str
    public_file: str
    public_prefix: str
    holder: str
    public_goes_to: str


#: Every key the system uses. Private files are written 0600, public files 0644; each public prefix is
#: distinct, so a public key can never be taken for another kind.
KEY_KINDS = (
    KeyKind("evidence", EVIDENCE_KEY, EVIDENCE_PUB, _RECIPIENT_PREFIX, "the municipality (offline)",
            "every device, as evidence.recipients"),
    KeyKind("device", DEVICE_KEY, DEVICE_PUB, DEVICE_PUB_PREFIX, "one device",
            "the back office's enrolled devices"),
    KeyKind("receiver", RECEIPT_KEY, RECEIPT_PUB, RECEIPT_PUB_PREFIX, "the back office's receivers",
            "every device, as uplink.receipt_key"),
    KeyKind("command", COMMAND_KEY, COMMAND_PUB, COMMAND_PUB_PREFIX, "the control room",
            "every device, as commands.public_key"),
    KeyKind("office", OFFICE_KEY, OFFICE_PUB, OFFICE_PUB_PREFIX, "the back office (its audit log)",
            "whoever checks the office audit log (data-protection officer, auditors)"),
)
