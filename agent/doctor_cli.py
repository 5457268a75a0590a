"""The ``bodycam doctor`` and ``bodycam status`` subcommands: thin wrappers that print and return codes.

Exit codes: ``doctor`` 0 when nothing FAILs, 1 when something does (the device is not fit for duty);
``status`` 0 when the agent is running and reporting, 1 when it is not (or has stopped reporting).
"""

from __future__ import annotations

import json
import sys
import time

from base.errors import BodycamError

from .doctor import DEFAULT_CONFIG, Check, Context, Level, exit_code, run_checks
from .doctor.check import format_duration
from .doctor.context import SERVICE
from .doctor.machine import systemd_service_state
from .doctor.storage import scan_spool
from .status import StatusDocument
from .statusfile import STATUS_PATH, read_status, status_path

EXIT_OK, EXIT_PROBLEM = 0, 1
_WIDTH = 11  # "recipients " — the longest check name plus a space


def register(subparsers) -> None:
    """Add ``doctor`` and ``status`` to the ``bodycam`` command's subparsers."""
    p = subparsers.add_parser("doctor", help="check camera, display, GPIO, keys, clock, broker and spool; "
                                             "one line each with the fix")
    p.add_argument("--config", default=DEFAULT_CONFIG, metavar="FILE",
                   help=f"the agent's config (default {DEFAULT_CONFIG})")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=cmd_doctor)

    p = subparsers.add_parser("status", help="the running agent's state and backlog")
    p.add_argument("--config", default=DEFAULT_CONFIG, metavar="FILE",
                   help=f"config naming the status file and the spool (default {DEFAULT_CONFIG})")
    p.add_argument("--file", metavar="PATH",
                   help=f"the status file the agent writes (default: runtime.status_file, {STATUS_PATH})")
    p.add_argument("--json", action="store_true", help="print the status document as JSON")
    p.set_defaults(func=cmd_status)


# --- doctor ---------------------------------------------------------------------------------------

def cmd_doctor(args, ctx: Context | None = None) -> int:
    """Run every check and print one line each (two when there is a fix)."""
    ctx = ctx or Context.load(args.config)
    results = run_checks(ctx)
    if args.json:
        print(json.dumps({"config": ctx.config_path, "ok": exit_code(results) == 0,
                          "checks": [r.as_dict() for r in results]}, indent=2))
    else:
        for line in format_report(results):
            print(line)
    return exit_code(results)


def format_report(results: list[Check]) -> list[str]:
    lines = []
    for r in results:
        lines.append(f"{r.level.value:<5} {r.name:<{_WIDTH}}{r.title}")
        if r.fix and r.level is not Level.OK:
            lines.append(f"{'':<6}{'':<{_WIDTH}}fix: {r.fix}")
    counts = {level: sum(r.level is level for r in results) for level in Level}
    lines.append(", ".join(f"{n} {level.value}" for level, n in counts.items() if n))
    return lines


# --- status ---------------------------------------------------------------------------------------

def cmd_status(args, now: float | None = None) -> int:
    """The status file when the agent is running; otherwise the spool's backlog and why it is not."""
    now = time.time() if now is None else now
    cfg = _config_or_none(args.config)
    path = args.file or status_path(cfg)
    try:
        status = read_status(path, now=now)
    except BodycamError as exc:
        print(f"bodycam: {exc}", file=sys.stderr)
        return EXIT_PROBLEM
    if status is not None and status.running:
        if args.json:
            print(json.dumps({"running": True, "age_s": round(status.age_s, 1), **status.doc.as_json()}, indent=2))
        else:
            for line in describe_status(status.doc, now):
                print(line)
        return EXIT_OK
    if status is None:
        reason = f"not running (no status file {path})"
    elif status.stopped:
        code = "?" if status.doc.exit_code is None else status.doc.exit_code
        reason = f"stopped {format_duration(status.age_s)} ago (exit code {code})"
    else:
        reason = f"not responding: its status is {status.age_s:.0f} s old"
    backlog = _spool_backlog(cfg)
    if args.json:
        print(json.dumps({"running": False, "reason": reason, "backlog": backlog}, indent=2))
    else:
        print(f"agent:   {reason}")
        state = systemd_service_state(SERVICE)
        if state:
            print(f"service: bodycam-agent is {state} (journalctl -u bodycam-agent -b says why)")
        print(f"backlog: {_spool_backlog_line(backlog)}")
    return EXIT_PROBLEM


def describe_status(doc: StatusDocument, now: float) -> list[str]:
    """Human lines for a running agent's status document."""
    lines = [f"agent:   running, version {doc.version}, device {doc.site}/{doc.device}"]
    state = doc.state.upper()
    if doc.recording_since is not None:
        state += f" for {format_duration(now - doc.recording_since)}"
    if doc.incident_id:
        state += f" (incident {doc.incident_id})"
    if doc.refused_reason:
        state += f"; recording refused: {doc.refused_reason}"
    lines.append(f"state:   {state}")
    lines.append(f"camera:  {doc.frames_seen} frame(s) seen, {doc.frames_lost} lost"
                 + (" (OVERRUN)" if doc.overrun_alarm else ""))
    if doc.pre_event is not None:
        p = doc.pre_event
        held = f", holding {p.seconds_held:.1f} s in RAM" if p.active else ""
        lines.append(f"policy:  legal profile {doc.profile}; pre-event {p.mode}, "
                     f"{p.window_seconds:g} s window{held}")
    if doc.storage is not None:
        lines.append(f"storage: {doc.storage.reason}")
    if doc.backlog is not None:
        b = doc.backlog
        lines.append(f"backlog: {_backlog_line(b.segments, b.bytes, b.oldest_age_s)}")
    lines.append(f"uplink:  {_uplink_line(doc, now)}")
    if doc.checkout is not None:
        c = doc.checkout
        who = (f"{c.officer} (by {c.via}, {format_duration(now - c.since)} ago)" if c.officer and c.since
               else c.officer or "nobody assigned")
        lines.append(f"officer: {who}" + ("; in the dock" if c.docked else ""))
    if doc.display is not None:
        d = doc.display
        slow = "" if d.fps >= 0.9 * d.target_fps else " (the panel's bus cannot carry more)"
        lines.append(f"display: {d.driver}, {d.fps:g} of {d.target_fps:g} frames/s{slow}")
    for part, fault in doc.faults.items():
        lines.append(f"FAULT:   {part}: {fault}")
    for alert in doc.alerts:
        lines.append(f"ALERT:   {alert.text} ({alert.severity})")
    return lines


def _uplink_line(doc: StatusDocument, now: float) -> str:
    if doc.broker is None:
        return "off (uplink.enabled = false): segments stay on the card"
    up = doc.uplink
    if up is None:  # not started: faults["uplink"] says why
        return f"NOT connected to {doc.broker}"
    line = f"{'connected' if up.link_up else 'NOT connected'} to {doc.broker}, state {up.state}"
    if up.last_receipt_time is not None:
        line += f", last receipt {format_duration(now - up.last_receipt_time)} ago"
    if up.fault:
        line += f"; {up.fault}"
    return line


def _config_or_none(path: str):
    from . import config

    try:
        return config.load(path)
    except BodycamError:
        return None


def _spool_backlog(cfg) -> dict:
    """The spool's backlog counted from the card (read-only), in the status document's shape."""
    if cfg is None:
        return {"error": "no readable config names the spool"}
    try:
        scan = scan_spool(cfg.storage.spool_dir)
    except OSError as exc:
        return {"error": f"{cfg.storage.spool_dir}: {exc.strerror}"}
    age = None if scan.oldest_mtime is None else max(0.0, time.time() - scan.oldest_mtime)
    return {"segments": scan.pending, "bytes": scan.pending_bytes, "oldest_age_s": age,
            "acknowledged": scan.acknowledged, "quarantined": scan.quarantined}


def _spool_backlog_line(backlog: dict) -> str:
    if "error" in backlog:
        return f"unknown ({backlog['error']})"
    line = _backlog_line(backlog["segments"], backlog["bytes"], backlog["oldest_age_s"])
    if backlog["quarantined"]:
        line += f"; {backlog['quarantined']} file(s) in quarantine"
    return line


def _backlog_line(segments: int, nbytes: int, oldest_age_s: float | None) -> str:
    if not segments:
        return "nothing waiting for the back office"
    line = f"{segments} segment(s), {nbytes / 2**20:.1f} MiB waiting for the back office"
    if oldest_age_s is not None:
        line += f", oldest {format_duration(oldest_age_s)}"
    return line
