"""The ``keys``, ``verify``, ``verify-audit`` and ``export`` subcommands, shared by both programs' commands
(``bodycam`` on the device, ``bodycam-office`` in the back office): thin wrappers that turn results into exit codes.

Exit codes: 0 all good; 1 verification failed (or export refused); 2 bad usage or input (missing or
damaged files, wrong key). Errors are one sentence on stderr, never a traceback.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path

from base.errors import BodycamError

from .audit import AuditHead, verify_log
from .export import ExportRefused, export_incident, report_path_for
from .keys import generate_command_key, generate_device_key, generate_office_key, generate_evidence_keys, generate_receipt_key, load_device_public_keys, load_evidence_identities, load_office_public_key, load_receipt_public_key
from .verify import ChainHead, VerifyInputError, verify_paths

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
_HEX64 = re.compile(r"[0-9a-f]{64}")


def register(subparsers) -> None:
    """Add ``keys``, ``verify``, ``verify-audit`` and ``export`` to the ``bodycam`` command's subparsers."""
    keys = subparsers.add_parser("keys", help="create key pairs (municipality evidence key, device signing key)")
    kinds = keys.add_subparsers(dest="key_kind", required=True, metavar="{evidence,device,receiver,command,office}")
    ev = kinds.add_parser("evidence", help="create evidence.key (keep offline!) and evidence.pub (for devices)")
    ev.add_argument("--out", required=True, metavar="DIR", help="directory to write the two files into")
    ev.add_argument("--force", action="store_true", help="replace existing key files (the old key is lost)")
    ev.set_defaults(func=cmd_keys_evidence)
    dev = kinds.add_parser("device", help="create device.key (stays on the device) and device.pub (to enrol)")
    dev.add_argument("--out", required=True, metavar="DIR", help="directory to write the two files into")
    dev.add_argument("--device-id", help="bind the key to this device id in device.pub (recommended)")
    dev.add_argument("--force", action="store_true", help="replace existing key files (the old key is lost)")
    dev.set_defaults(func=cmd_keys_device)
    # The back office's Ed25519 pairs: (kind, generator, who keeps the private key, where the public key goes,
    # what --force costs).
    pairs = (("receiver", generate_receipt_key, "keep it with the receivers", "install it on every device as "
              "uplink.receipt_key", "devices then need the new receipt.pub"),
             ("command", generate_command_key, "the control room's, mode 0600", "install it on every device as "
              "commands.public_key", "devices then need the new command.pub"),
             ("office", generate_office_key, "the back office's, mode 0600", "give it to whoever checks the "
              "office audit log", "logs signed so far then verify only with the old office.pub"))
    for name, generate, keeper, destination, cost in pairs:
        pair = kinds.add_parser(name, help=f"create {name} key pair ({keeper}; public key: {destination})")
        pair.add_argument("--out", required=True, metavar="DIR", help="directory to write the two files into")
        pair.add_argument("--force", action="store_true", help=f"replace existing key files ({cost})")
        pair.set_defaults(func=cmd_keys_pair, generate=generate, keeper=keeper, destination=destination)

    ver = subparsers.add_parser("verify", help="verify sealed segments with the enrolled device public keys")
    ver.add_argument("paths", nargs="+", metavar="PATH", help="segment files or directories (searched recursively)")
    ver.add_argument("--devices", action="append", required=True, metavar="DIR_OR_FILE",
                     help="enrolled device.pub file or directory of *.pub files (repeat for more)")
    ver.add_argument("--head", action="append", default=[], metavar="[DEVICE=]SEQ[:SHA256] | FILE.json",
                     help="the chain head the device published (telemetry 'chain_head', or a saved telemetry "
                          "message or status.json): what is missing after the newest segment is reported")
    ver.add_argument("--first-seq", action="append", default=[], metavar="[DEVICE=]SEQ",
                     help="the seq the set is meant to start at (e.g. a spool whose older segments were "
                          "purged after upload); without it a set starting after seq 1 fails")
    ver.add_argument("--receipt-key", metavar="receipt.pub", help="also check the receipts' signatures")
    ver.add_argument("--office-key", metavar="office.pub", help="take the back office's signed tombstones into "
                                                                "account: its deletions are reported, not gaps")
    ver.add_argument("--json", action="store_true", help="print the full report as JSON")
    ver.set_defaults(func=cmd_verify)

    aud = subparsers.add_parser("verify-audit", help="verify a device's signed audit log with its enrolled public key")
    aud.add_argument("log", metavar="AUDIT_LOG", help="the device's audit log (storage.audit_log, e.g. audit.jsonl)")
    aud.add_argument("--devices", action="append", required=True, metavar="DIR_OR_FILE",
                     help="enrolled device.pub file or directory of *.pub files (repeat for more)")
    aud.add_argument("--device", metavar="ID", help="the device whose log it is (when several keys are given)")
    aud.add_argument("--head", metavar="SEQ:HASH | FILE.json",
                     help="the audit head the device published (telemetry 'audit_head', or a saved telemetry "
                          "message or status.json): without it, lines cut off the end cannot be seen")
    aud.set_defaults(func=cmd_verify_audit)

    exp = subparsers.add_parser("export", help="verify, decrypt and join one incident into an MP4")
    exp.add_argument("paths", nargs="+", metavar="PATH", help="segment files or directories (searched recursively)")
    exp.add_argument("--identity", required=True, metavar="evidence.key", help="the municipality's age identity")
    exp.add_argument("--out", required=True, metavar="FILE.mp4", help="MP4 to write; the report goes beside it")
    exp.add_argument("--devices", action="append", required=True, metavar="DIR_OR_FILE",
                     help="enrolled device.pub file or directory of *.pub files (repeat for more)")
    exp.add_argument("--incident", metavar="ID", help="incident to export (needed when the paths hold several)")
    exp.add_argument("--device", metavar="ID", help="device whose recording to export (when several have it)")
    exp.add_argument("--allow-gaps", action="store_true",
                     help="export the verified parts of an incomplete incident (the report says what is missing)")
    exp.set_defaults(func=cmd_export)


def _guard(fn):
    """Turn the project's errors into one sentence and exit code 2."""
    def run(args) -> int:
        try:
            return fn(args)
        except BodycamError as exc:
            print(f"bodycam: {exc}", file=sys.stderr)
            return EXIT_USAGE
    run.__name__ = fn.__name__
    run.__doc__ = fn.__doc__
    return run


@_guard
def cmd_keys_evidence(args) -> int:
    files = generate_evidence_keys(args.out, force=args.force)
    print(f"wrote {files.identity_path} (private: keep it offline, back it up) and {files.recipient_path}")
    print(f"recipient: {files.recipient}")
    return EXIT_OK


@_guard
def cmd_keys_device(args) -> int:
    files = generate_device_key(args.out, device_id=args.device_id, force=args.force)
    print(f"wrote {files.key_path} (stays on the device) and {files.pub_path} (enrol it)")
    print(f"key id: {files.public.key_id}")
    return EXIT_OK


@_guard
def cmd_keys_pair(args) -> int:
    files = args.generate(args.out, force=args.force)
    print(f"wrote {files.key_path} ({args.keeper}) and {files.pub_path} ({args.destination})")
    print(f"key id: {files.public.key_id}")
    return EXIT_OK


@_guard
def cmd_verify(args) -> int:
    devices = load_device_public_keys(args.devices)
    receipt_key = load_receipt_public_key(args.receipt_key) if args.receipt_key else None
    office_key = load_office_public_key(args.office_key) if args.office_key else None
    report = verify_paths(args.paths, devices, heads=[parse_chain_head(h) for h in args.head],
                          first_seqs=dict(_device_value(v, "--first-seq", _seq) for v in args.first_seq),
                          receipt_key=receipt_key, office_key=office_key)
    if args.json:
        print(report.to_json())
    else:
        for line in report.lines():
            print(f"BAD  {line}")
        for cut in report.cuts:
            print(f"CUT  {cut.message}")
        for deletion in report.deletions:
            print(f"DELETED {deletion.message()}")
        for note in report.notes:
            print(f"note {note}")
        good = sum(s.ok for s in report.segments)
        cuts = f", {len(report.cuts)} incident(s) cut by a device restart" if report.cuts else ""
        print(f"{'OK' if report.ok else 'FAILED'}: {good} of {len(report.segments)} segment(s) verified, "
              f"{len(report.problems)} problem(s) with the set{cuts}")
    return EXIT_OK if report.ok else EXIT_FAILED


@_guard
def cmd_export(args) -> int:
    devices = load_device_public_keys(args.devices)
    identities = load_evidence_identities(args.identity)
    bar = _ProgressBar(sys.stderr)
    try:
        result = export_incident(args.paths, devices=devices, identities=identities, out=args.out,
                                 incident_id=args.incident, device_id=args.device, allow_gaps=args.allow_gaps,
                                 progress=bar)
    except ExportRefused as exc:
        bar.close()
        for problem in exc.problems:
            print(f"BAD  {problem}", file=sys.stderr)
        print(f"bodycam: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        bar.close()
    state = "complete" if result.complete else "INCOMPLETE (gaps allowed; see report)"
    if result.report.get("cut"):
        state += f"; {result.report['cut']['message']}"
    print(f"wrote {result.mp4_path} ({state}) and {report_path_for(result.mp4_path)}")
    return EXIT_OK


@_guard
def cmd_verify_audit(args) -> int:
    keys = [k for k in load_device_public_keys(args.devices).values() if args.device in (None, k.device_id)]
    if not keys:
        raise VerifyInputError(f"no enrolled key for device {args.device!r} in the given --devices")
    head = parse_audit_head(args.head) if args.head else None
    # The log does not name its key: take the enrolled key under which most of it verifies.
    reports = [verify_log(args.log, k.key, expected_head=head) for k in keys]
    report = max(reports, key=lambda r: (r.ok, r.lines))
    for recovery in report.recoveries:
        print(f"note line {recovery.line}: {recovery.reason}")
    print(report.summary())
    return EXIT_OK if report.ok else EXIT_FAILED


def parse_audit_head(text: str) -> AuditHead:
    """``--head`` of verify-audit: ``SEQ:HASH``, or a JSON file with ``audit_head`` (telemetry, status.json)."""
    if text.endswith(".json") or Path(text).is_file():
        doc = _json_file(text)
        head = doc.get("audit_head") if isinstance(doc, dict) else None
        seq, digest = (head.get("seq"), head.get("hash")) if isinstance(head, dict) else (None, None)
        where = f"{text}: 'audit_head'"
    else:
        seq, _, digest = text.partition(":")
        seq = int(seq) if seq.isdigit() else None
        where = f"--head {text!r}"
    if isinstance(seq, bool) or not isinstance(seq, int) or not (isinstance(digest, str) and _HEX64.fullmatch(digest)):
        raise VerifyInputError(f"{where} must give a seq and a 64-hex-digit hash (SEQ:HASH)")
    return AuditHead(seq, digest)


def parse_chain_head(text: str) -> ChainHead:
    """``--head``: ``[DEVICE=]SEQ[:SHA256]``, or a JSON file with ``chain_head`` (telemetry, status.json)."""
    if text.endswith(".json") or Path(text).is_file():
        doc = _json_file(text)
        head = doc.get("chain_head") if isinstance(doc, dict) else None
        if not isinstance(head, dict):
            raise VerifyInputError(f"{text}: no 'chain_head' in it (a telemetry message or the agent's status.json "
                                   "has one)")
        seq, digest = head.get("seq"), head.get("manifest_sha256")
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0 or not (
                digest is None or (isinstance(digest, str) and _HEX64.fullmatch(digest))):
            raise VerifyInputError(f"{text}: 'chain_head' is not {{\"seq\": N, \"manifest_sha256\": hex}}")
        device = doc.get("device")
        return ChainHead(seq, digest, device if isinstance(device, str) else None)
    device, value = _device_value(text, "--head", str)
    seq, _, digest = value.partition(":")
    if digest and not _HEX64.fullmatch(digest):
        raise VerifyInputError(f"--head {text!r}: the manifest hash must be 64 lower-case hex digits")
    return ChainHead(_seq(seq, "--head"), digest or None, device)


def _device_value(text: str, option: str, convert=None):
    device, sep, value = text.rpartition("=")
    return (device if sep else None), (convert(value, option) if convert is not str else value)


def _seq(text: str, option: str) -> int:
    if not text.isdigit():
        raise VerifyInputError(f"{option}: {text!r} is not a sequence number")
    return int(text)


def _json_file(path: str):
    try:
        return json.loads(Path(path).read_bytes())
    except OSError as exc:
        raise VerifyInputError(f"{path}: cannot read ({exc.strerror})") from None
    except ValueError:
        raise VerifyInputError(f"{path}: not a JSON document") from None


class _ProgressBar:
    """``[#####.....] 3/10 segments`` redrawn in place on a terminal; one line per step into a file or pipe
    (a carriage return there would read as an empty line)."""

    WIDTH = 30

    def __init__(self, stream):
        self.stream = stream
        self.drawn = False
        self.in_place = stream.isatty()

    def __call__(self, done: int, total: int) -> None:
        filled = self.WIDTH * done // max(total, 1)
        bar = f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done}/{total} segments"
        self.stream.write(f"\r{bar}" if self.in_place else f"{bar}\n")
        self.stream.flush()
        self.drawn = self.in_place

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False
