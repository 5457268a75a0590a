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
            print(json.dumps({"running": True, "age_s": round(status.age_s, 1), **status.doc}, indent=2))
        else:
            for line in describe_status(status.doc, now):
                print(line)
        return EXIT_OK
    if status is None:
        reason = f"not running (no status file {path})"
    elif status.stopped:
        reason = (f"stopped {format_duration(status.age_s)} ago "
                  f"(exit code {status.doc.get('exit_code', '?')})")
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
        print(f"backlog: {_backlog_line(backlog, now)}")
    return EXIT_PROBLEM


def describe_status(doc: dict, now: float) -> list[str]:
    """Human lines for a status document; missing keys are left out, unknown ones ignored."""
    device = doc.get("device")
    if isinstance(device, dict):  # the proposed form
        site, device = device.get("site", "?"), device.get("id", "?")
    else:
        site = doc.get("site", "?")
    head = f"agent:   running, version {doc.get('version', '?')}, device {site}/{device or '?'}"
    if doc.get("pid"):
        head += f", pid {doc['pid']}"
    if _is_time(doc.get("started_at")):
        head += f", up {_ago(now - doc['started_at'])}"
    lines = [head]
    state = str(doc.get("state", "?")).upper()
    if _is_time(doc.get("recording_since")):
        state += f" for {_ago(now - doc['recording_since'])}"
    if doc.get("incident_id"):
        state += f" (incident {doc['incident_id']})"
    if doc.get("refused_reason"):
        state += f"; recording refused: {doc['refused_reason']}"
    lines.append(f"state:   {state}")
    if "frames_seen" in doc:
        lost = doc.get("frames_lost", 0)
        lines.append(f"camera:  {doc['frames_seen']} frame(s) seen, {lost} lost"
                     + (" (OVERRUN)" if doc.get("overrun_alarm") else ""))
    camera = doc.get("camera")
    if isinstance(camera, dict):  # the proposed form
        fault = f", FAULT: {camera['fault']}" if camera.get("fault") else ""
        lines.append(f"camera:  {camera.get('backend', '?')}, {camera.get('dropped_frames', 0)} frame(s) dropped{fault}")
    storage = doc.get("storage")
    if isinstance(storage, dict) and storage.get("reason"):
        lines.append(f"storage: {storage['reason']}")
    if isinstance(doc.get("backlog"), dict):
        lines.append(f"backlog: {_backlog_line(doc['backlog'], now)}")
    uplink = doc.get("uplink")
    if isinstance(uplink, dict):
        link = "connected" if uplink.get("connected") else "NOT connected"
        last = uplink.get("last_ack_at")
        lines.append(f"uplink:  {link} to {uplink.get('broker', '?')}"
                     + (f", last receipt {_ago(now - last)} ago" if _is_time(last) else ""))
    for part, fault in (doc.get("faults") or {}).items():
        lines.append(f"FAULT:   {part}: {fault}")
    for alarm in doc.get("alarms") or ():
        lines.append(f"ALARM:   {alarm}")
    return lines


def _is_time(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _config_or_none(path: str):
    from . import config

    try:
        return config.load(path)
    except BodycamError:
        return None


def _spool_backlog(cfg) -> dict:
    """The spool's backlog counted from the card (read-only), in the status file's shape."""
    if cfg is None:
        return {"error": "no readable config names the spool"}
    try:
        scan = scan_spool(cfg.storage.spool_dir)
    except OSError as exc:
        return {"error": f"{cfg.storage.spool_dir}: {exc.strerror}"}
    age = None if scan.oldest_mtime is None else max(0.0, time.time() - scan.oldest_mtime)
    return {"segments": scan.pending, "bytes": scan.pending_bytes, "oldest_age_s": age,
            "acknowledged": scan.acknowledged, "quarantined": scan.quarantined}


def _backlog_line(backlog: dict | None, now: float) -> str:
    if not backlog:
        return "unknown"
    if "error" in backlog:
        return f"unknown ({backlog['error']})"
    count = backlog.get("segments", backlog.get("count", 0))
    if not count:
        return "nothing waiting for the back office"
    line = f"{count} segment(s), {backlog.get('bytes', 0) / 2**20:.1f} MiB waiting for the back office"
    if isinstance(backlog.get("oldest_age_s"), (int, float)):
        line += f", oldest {_ago(backlog['oldest_age_s'])}"
    if backlog.get("quarantined"):
        line += f"; {backlog['quarantined']} file(s) in quarantine"
    return line


def _ago(seconds: float) -> str:
    return format_duration(seconds)
