"""Checks of the evidence on the card: the spool directory (writable by the agent, space left) and the
backlog of segments waiting for the back office's receipt. Both only look; nothing is recovered,
moved or deleted."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from base.errors import BodycamError

from .check import Check, fail, format_duration, ok, skip, warn
from .context import Context
from .local import SUDO
from .machine import service_uid, user_name

#: A segment waiting longer than this for its receipt means the device has not been online.
BACKLOG_WARN_AGE_S = 24 * 3600


@dataclass(frozen=True)
class SpoolScan:
    """A read-only look at the spool directory (the agent's Spool recovers; this only counts)."""

    pending: int
    pending_bytes: int
    oldest_mtime: float | None
    acknowledged: int
    quarantined: int


def scan_spool(directory: str | os.PathLike) -> SpoolScan:
    """Count segments whose manifest has no receipt yet, without touching a file."""
    from evidence.spool import AGE_SUFFIX, MANIFEST_SUFFIX, QUARANTINE_DIR, RECEIPT_SUFFIX

    d = Path(directory)
    names = {e.name: e for e in os.scandir(d) if e.is_file(follow_symlinks=False)}
    pending = acked = size = 0
    oldest = None
    for name, entry in names.items():
        if not name.endswith(MANIFEST_SUFFIX):
            continue
        stem = name[: -len(MANIFEST_SUFFIX)]
        if stem + RECEIPT_SUFFIX in names:
            acked += 1
            continue
        pending += 1
        st = entry.stat()
        age = names.get(stem + AGE_SUFFIX)
        size += st.st_size + (age.stat().st_size if age else 0)
        oldest = st.st_mtime if oldest is None else min(oldest, st.st_mtime)
    quarantine = d / QUARANTINE_DIR
    quarantined = sum(1 for _ in quarantine.iterdir()) if quarantine.is_dir() else 0
    return SpoolScan(pending, size, oldest, acked, quarantined)


def check_spool(ctx: Context) -> Check:
    from ..diskspace import DiskPressure, PressureLevel

    storage = ctx.config.storage
    path = Path(storage.spool_dir)
    if not path.is_dir():
        return fail("spool", f"spool directory {path} does not exist",
                    f"run 'sudo install.sh', which creates it for user {ctx.service_user}")
    problem = _writable_problem(ctx, path)
    if problem:
        return problem
    try:
        snap = DiskPressure(path, storage.warn_free_mib, storage.critical_free_mib).measure()
    except BodycamError as exc:
        return fail("spool", str(exc), "check the SD card")
    if snap.level is PressureLevel.CRITICAL:
        return fail("spool", snap.reason, "connect the device so it uploads its backlog, or free space on the card")
    if snap.level is PressureLevel.WARN:
        return warn("spool", snap.reason, "connect the device so it uploads its backlog")
    return ok("spool", f"{path} writable by {ctx.service_user}, {snap.free_mib:.0f} MiB free")


def _writable_problem(ctx: Context, path: Path) -> Check | None:
    """As root, judge by owner and mode (root may write anywhere); otherwise ask the kernel."""
    uid = service_uid(ctx.service_user)
    fix = f"run 'sudo chown -R {ctx.service_user}:{ctx.service_user} {path}' (install.sh sets it up so)"
    if ctx.euid == 0 and uid is not None:
        st = path.stat()
        if st.st_uid != uid or st.st_mode & 0o700 != 0o700:
            return fail("spool", f"{path} ({stat.filemode(st.st_mode)}, owner {user_name(st.st_uid)}) is not "
                                 f"writable by the agent's user {ctx.service_user}", fix)
        return None
    if not os.access(path, os.W_OK | os.X_OK):
        return fail("spool", f"{path} is not writable by this user", fix)
    return None


def check_backlog(ctx: Context) -> Check:
    path = Path(ctx.config.storage.spool_dir)
    if not path.is_dir():
        return skip("backlog", f"no spool directory {path}")
    try:
        scan = scan_spool(path)
    except PermissionError:
        return warn("backlog", f"cannot read {path} as this user", SUDO)
    if scan.quarantined:
        return warn("backlog", f"{scan.quarantined} file(s) in {path / 'quarantine'} failed verification at start-up",
                    "copy them to the back office for examination; they are evidence and never deleted automatically")
    if not scan.pending:
        return ok("backlog", f"nothing waiting for the back office ({scan.acknowledged} acknowledged on the card)")
    age = ctx.now() - scan.oldest_mtime
    title = (f"{scan.pending} segment(s), {scan.pending_bytes / 2**20:.1f} MiB waiting for the back office's "
             f"receipt, oldest {format_duration(age)}")
    if age > BACKLOG_WARN_AGE_S:
        return warn("backlog", title, "connect the device to the network so it can upload; check the broker line above")
    return ok("backlog", title)
