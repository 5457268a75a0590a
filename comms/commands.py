"""Remote commands: authenticated beyond the broker's ACL, validated before they touch anything.

A command is one JSON object, signed by the back office's command key (Ed25519)::

    {"v": 1, "id": "<unique>", "ts": <UNIX seconds>, "device": "<device id>",
     "cmd": "start" | "stop" | "identify" | "mirror" | "request-telemetry" | "set" | "assign" | "unassign",
     "args": {...}, "sig": "<base64 Ed25519 over the canonical form without 'sig'>"}

``assign`` (``{"officer": "<pseudonymous id>"}``) and ``unassign`` (no arguments) are officer check-out
from the back office: they pass every check below like any command, so an unsigned, altered, stale or
replayed assignment changes nothing.

The signature covers ``b"bodycam-command-v1\\n" + canonical(document without "sig")`` where canonical is
``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=True)``: the prefix keeps a command
signature from ever passing as a receipt or manifest signature. The payload on the wire must be exactly
``canonical(document)``: the device re-serialises what it parsed and refuses the command unless the bytes
are identical, so a byte-order mark, UTF-16, whitespace, needless escapes, another spelling of a number
or a repeated key (refused while parsing) cannot make a reader of the raw message see another command
than the one that runs. A command is rejected when it is too large, not JSON, of an unknown version or
command, has unknown or wrongly typed fields, is for another device, is older or newer than
``max_age_s``, was issued before this agent started (so a replay across a reboot fails too; ``ts`` has
whole milliseconds, cut down, and is compared without grace), repeats an id already seen, or its
signature does not verify. Rejection changes nothing but the result message and the audit log. No
command deletes evidence: there is none for it.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import enum
import json
import logging
import math
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

from evidence import audit
from base.canonical import canonical_json
from base.errors import BodycamError
from base.ids import OFFICER_ID_RULE, is_officer_id

from .refusals import RefusalLog

logger = logging.getLogger(__name__)

VERSION = 1
SIGNATURE_DOMAIN = b"bodycam-command-v1\n"
MAX_COMMAND_BYTES = 4096
_ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")


class CommandRejected(BodycamError):
    """A command that is not executed; ``code`` is stable for machines, the message for people."""

    def __init__(self, code: str, message: str, command_id: str | None = None):
        super().__init__(message)
        self.code = code
        self.command_id = command_id


@dataclass(frozen=True)
class Command:
    id: str
    ts: float
    device: str
    name: str
    args: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CommandResult:
    """What the device answers on ``…/cmd/result``."""

    id: str | None
    ok: bool
    code: str
    reason: str
    ts: float = field(default_factory=time.time)

    def to_json(self) -> bytes:
        return json.dumps({"v": VERSION, "id": self.id, "ok": self.ok, "code": self.code, "reason": self.reason,
                           "ts": round(self.ts, 3)}, sort_keys=True).encode()


#: The signed byte form of a command (base.canonical: one canonical JSON for every signed document).
canonical = canonical_json


def issued_at(t: float) -> float:
    """A command's time stamp: whole milliseconds, cut down, so it never lies after the moment of signing
    (rounding up could carry a command signed just before the agent started past its start check)."""
    return math.floor(t * 1000) / 1000


def sign_command(private_key, device: str, name: str, args: dict | None = None, *, command_id: str | None = None,
                 ts: float | None = None) -> bytes:
    """The back office's side: a signed command payload (``private_key`` is an Ed25519PrivateKey)."""
    doc = {"v": VERSION, "id": command_id or secrets.token_hex(8), "ts": issued_at(time.time() if ts is None else ts),
           "device": device, "cmd": name, "args": args or {}}
    doc["sig"] = base64.b64encode(private_key.sign(SIGNATURE_DOMAIN + canonical(doc))).decode("ascii")
    return canonical(doc)


# -- argument schemas ----------------------------------------------------------------------------------

def _no_args(args: dict) -> dict:
    return {}


def _identify_args(args: dict) -> dict:
    seconds = args.get("seconds", 10)
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not 1 <= seconds <= 60:
        raise CommandRejected("invalid_args", "identify: 'seconds' must be a whole number from 1 to 60")
    return {"seconds": seconds}


def _assign_args(args: dict) -> dict:
    if not is_officer_id(args.get("officer")):
        raise CommandRejected("invalid_args", f"assign: 'officer' must be a pseudonymous officer id, {OFFICER_ID_RULE}")
    return {"officer": args["officer"]}


def _mirror_args(args: dict) -> dict:
    if not isinstance(args.get("on"), bool):
        raise CommandRejected("invalid_args", "mirror: 'on' must be true or false")
    return {"on": args["on"]}


@dataclass(frozen=True)
class Setting:
    """A config key a command may change: its section, key and check."""

    section: str
    key: str
    check: Callable[[object], str | None]  # returns a complaint or None


def _number_in(lo: float, hi: float, whole: bool = False):
    def check(value):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (whole and not isinstance(value, int)):
            return f"must be a {'whole ' if whole else ''}number"
        if not math.isfinite(value) or not lo <= value <= hi:
            return f"must be between {lo:g} and {hi:g}"
        return None
    return check


def _one_of(*choices):
    return lambda value: None if value in choices else f"must be one of {', '.join(choices)}"


class CommandVerifier:
    """Parses and authenticates command payloads for one device. Not thread-safe: one consumer."""

    def __init__(self, device_id: str, verify_key, *, pre_event_max_s: float, max_age_s: float = 60.0,
                 clock: Callable[[], float] = time.time, not_before: float | None = None):
        self.device_id = device_id
        self.verify_key = verify_key  # anything with verify(signature, data) -> bool
        self.max_age_s = max_age_s
        self.clock = clock
        self.not_before = clock() if not_before is None else not_before
        self._seen: OrderedDict[str, float] = OrderedDict()
        self.settings = {
            "telemetry.interval_seconds": Setting("telemetry", "interval_seconds", _number_in(5, 3600, whole=True)),
            "display.language": Setting("display", "language", _one_of("de", "en")),
            "recording.pre_event_seconds": Setting("recording", "pre_event_seconds", _number_in(0, pre_event_max_s)),
        }
        self._schemas = {"start": _no_args, "stop": _no_args, "identify": _identify_args, "mirror": _mirror_args,
                         "request-telemetry": _no_args, "set": self._set_args, "assign": _assign_args,
                         "unassign": _no_args}

    def _set_args(self, args: dict) -> dict:
        key, value = args.get("key"), args.get("value")
        setting = self.settings.get(key) if isinstance(key, str) else None
        if setting is None:
            raise CommandRejected("invalid_args", f"set: 'key' must be one of {', '.join(sorted(self.settings))}")
        complaint = setting.check(value)
        if complaint:
            raise CommandRejected("invalid_args", f"set {key}: value {value!r} {complaint}")
        return {"key": key, "value": value}

    def parse(self, payload: bytes) -> Command:
        """The verified command, or :class:`CommandRejected` saying why not."""
        if len(payload) > MAX_COMMAND_BYTES:
            raise CommandRejected("too_large", f"command of {len(payload)} bytes exceeds {MAX_COMMAND_BYTES}")
        doc = _parse_json(payload)
        if not isinstance(doc, dict):
            raise CommandRejected("malformed", "command must be a JSON object")
        command_id = doc.get("id") if _is_command_id(doc.get("id")) else None
        try:
            _require_canonical(doc, payload)
            return self._check(doc, command_id)
        except CommandRejected as exc:
            exc.command_id = command_id
            raise

    def _check(self, doc: dict, command_id: str | None) -> Command:
        expected = {"v", "id", "ts", "device", "cmd", "args", "sig"}
        if set(doc) != expected:
            missing, extra = expected - set(doc), set(doc) - expected
            raise CommandRejected("malformed", "command fields wrong: "
                                  + "; ".join(filter(None, [missing and f"missing {', '.join(sorted(missing))}",
                                                            extra and f"unknown {', '.join(sorted(map(repr, extra)))}"])))
        if doc["v"] != VERSION or isinstance(doc["v"], bool):
            raise CommandRejected("unsupported_version", f"command version {doc['v']!r} is not supported (only {VERSION})")
        if command_id is None:
            raise CommandRejected("malformed", "'id' must be 1-64 characters of letters, digits, '-', '_', '.', ':'")
        ts = doc["ts"]
        if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts):
            raise CommandRejected("malformed", "'ts' must be a UNIX time in seconds")
        if not isinstance(doc["device"], str) or not isinstance(doc["cmd"], str) or not isinstance(doc["args"], dict):
            raise CommandRejected("malformed", "'device' and 'cmd' must be strings and 'args' an object")
        if not isinstance(doc["sig"], str):
            raise CommandRejected("malformed", "'sig' must be a base64 string")
        if doc["device"] != self.device_id:
            raise CommandRejected("wrong_device", f"command is for device {doc['device']!r}, this is {self.device_id!r}")
        schema = self._schemas.get(doc["cmd"])
        if schema is None:
            raise CommandRejected("unknown_command", f"unknown command {doc['cmd']!r} (known: {', '.join(self._schemas)})")
        self._verify_signature(doc)
        now = self.clock()
        if abs(now - ts) > self.max_age_s:
            raise CommandRejected("stale", f"command time is {now - ts:+.0f} s off this device's clock "
                                           f"(at most {self.max_age_s:g} s allowed)")
        if ts < self.not_before:  # no grace: 'ts' is cut down to the ms, so nothing signed earlier passes
            raise CommandRejected("stale", "command was issued before this agent started")
        self._forget_old(now)
        if command_id in self._seen:
            raise CommandRejected("replayed", f"command id {command_id} was already received")
        args = schema(doc["args"])
        if set(doc["args"]) - set(args):
            unknown = ", ".join(sorted(map(repr, set(doc["args"]) - set(args))))
            raise CommandRejected("invalid_args", f"{doc['cmd']}: unknown argument(s) {unknown}")
        self._seen[command_id] = ts
        return Command(command_id, float(ts), doc["device"], doc["cmd"], args)

    def _verify_signature(self, doc: dict) -> None:
        try:
            signature = base64.b64decode(doc["sig"], validate=True)
        except (binascii.Error, ValueError):
            raise CommandRejected("bad_signature", "'sig' is not valid base64") from None
        if base64.b64encode(signature).decode("ascii") != doc["sig"]:  # spare bits set: a second spelling
            raise CommandRejected("bad_signature", "'sig' is not canonical base64")
        body = {k: v for k, v in doc.items() if k != "sig"}
        try:
            signed = SIGNATURE_DOMAIN + canonical(body)
        except (ValueError, TypeError):
            raise CommandRejected("malformed", "command holds values that have no canonical JSON form") from None
        if not self.verify_key.verify(signature, signed):
            raise CommandRejected("bad_signature", "signature does not verify with the back office's command key")

    def _forget_old(self, now: float) -> None:
        """Ids only need remembering while their time stamp is still acceptable."""
        horizon = now - self.max_age_s - 1.0
        for cid, ts in list(self._seen.items()):
            if ts < horizon:
                del self._seen[cid]


_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def _parse_json(payload: bytes):
    """The JSON value of a UTF-8 payload; any other encoding and any repeated key is refused, not guessed at."""
    if payload.startswith(_BOMS):
        raise CommandRejected("malformed", "command starts with a byte-order mark; send the signed bytes unchanged")
    if b"\0" in payload:
        raise CommandRejected("malformed", "command holds NUL bytes (UTF-16 or UTF-32 text?); commands are UTF-8")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise CommandRejected("malformed", "command is not UTF-8 text") from None
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise CommandRejected("malformed", "command is not valid JSON") from None


def _unique_keys(pairs: list) -> dict:
    """json's default keeps the last of repeated keys, so two readers could see two commands: refuse."""
    seen = set()
    for key, _ in pairs:
        if key in seen:
            raise CommandRejected("malformed", f"command repeats the field {key!r}")
        seen.add(key)
    return dict(pairs)


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _require_canonical(doc: dict, payload: bytes) -> None:
    """The signature covers the canonical bytes; only those bytes are accepted, so every reader of the
    message sees exactly what was signed and what runs."""
    try:
        same = canonical(doc) == payload
    except (ValueError, TypeError):  # a number too large for a float (1e999) has no canonical form
        same = False
    if not same:
        raise CommandRejected("malformed", "command is not in canonical form (sorted keys, no whitespace, "
                                           "ASCII with \\u escapes); send the signed bytes unchanged")




class RecorderRequest(str, enum.Enum):
    """What an accepted start, stop or mirror command asks of the recorder; the device program turns it
    into its own trigger."""

    START = "start"
    STOP = "stop"
    MIRROR_ON = "mirror_on"
    MIRROR_OFF = "mirror_off"


@dataclass
class CommandActions:
    """What an accepted command does; the runtime supplies these (apply_setting returns a reason to refuse,
    or None)."""

    recorder: Callable[[RecorderRequest, str], None]  # the request and the command's id
    identify: Callable[[int], None]
    request_telemetry: Callable[[], None]
    apply_setting: Callable[[str, str, object, str], str | None]  # section, key, value, source for the audit
    #: Officer check-out: (officer id, or None to unassign; the command's id) -> a reason to refuse or None.
    #: None: check-out is not enabled on this device, and assign/unassign are refused.
    assignment: Callable[[str | None, str], str | None] | None = None


class CommandHandler:
    """Verify, execute, audit: every payload ends in exactly one result. An authenticated command gets its
    own audit line; a rejected one is audited per burst (:class:`~comms.refusals.RefusalLog`), so junk
    sent without the key cannot fill the card. Call :meth:`tick` now and then and :meth:`close` at the
    end, from the same thread."""

    def __init__(self, verifier: CommandVerifier, actions: CommandActions, audit_log=None, *,
                 refusals: RefusalLog | None = None):
        self.verifier = verifier
        self.actions = actions
        self.audit_log = audit_log
        self.refusals = RefusalLog(audit_log) if refusals is None else refusals

    def tick(self) -> None:
        self.refusals.tick()

    def close(self) -> None:
        self.refusals.close()

    def handle(self, payload: bytes) -> CommandResult:
        try:
            command = self.verifier.parse(payload)
        except CommandRejected as exc:
            self.refusals.refused(exc.code, str(exc), id=exc.command_id, size=len(payload))
            return CommandResult(exc.command_id, False, exc.code, str(exc))
        self.refusals.close()  # the burst's counts come before this command's lines
        refusal = self._execute(command)
        if refusal:
            self._audit(audit.COMMAND_REJECTED, id=command.id, cmd=command.name, code="refused", reason=refusal)
            return CommandResult(command.id, False, "refused", refusal)
        self._audit(audit.COMMAND_RECEIVED, id=command.id, cmd=command.name, args=command.args)
        logger.info("command %s %r accepted", command.name, command.args)
        return CommandResult(command.id, True, "accepted", f"{command.name} accepted")

    def _execute(self, command: Command) -> str | None:
        name, args, act = command.name, command.args, self.actions
        if name in ("start", "stop"):
            act.recorder(RecorderRequest.START if name == "start" else RecorderRequest.STOP, command.id)
        elif name == "mirror":
            act.recorder(RecorderRequest.MIRROR_ON if args["on"] else RecorderRequest.MIRROR_OFF, command.id)
        elif name == "identify":
            act.identify(args["seconds"])
        elif name == "request-telemetry":
            act.request_telemetry()
        elif name == "set":
            setting = self.verifier.settings[args["key"]]
            return act.apply_setting(setting.section, setting.key, args["value"], f"remote command {command.id}")
        elif name in ("assign", "unassign"):
            if act.assignment is None:
                return "officer check-out is not enabled on this device (checkout.enabled)"
            return act.assignment(args.get("officer"), command.id)
        return None

    def _audit(self, event: str, **fields) -> None:
        if self.audit_log is not None:
            self.audit_log.append(event, **fields)


def _is_command_id(value) -> bool:
    """A command's own id (chosen by the control room: wider than a device id, so not base.ids' rule)."""
    return isinstance(value, str) and 0 < len(value) <= 64 and set(value) <= _ID_CHARS
