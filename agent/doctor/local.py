"""Checks of what is on the device itself: the config, the evidence recipients and signing key, the
running agent (by its status file and systemd), and the clock."""

from __future__ import annotations

import calendar
import os
import stat
import time
from pathlib import Path

from base.errors import BodycamError

from ..statusfile import StatusFileError, read_status
from .check import Check, fail, format_duration, ok, skip, warn
from .context import Context
from .machine import service_uid, user_name

#: Any clock before this is wrong (a Pi without network time starts at its last shutdown or 1970).
CLOCK_FLOOR = calendar.timegm((2025, 1, 1, 0, 0, 0))
SUDO = "run the doctor as root: sudo bodycam doctor"


def check_config(ctx: Context) -> Check:
    if ctx.config is None:
        if not Path(ctx.config_path).exists():
            return fail("config", f"{ctx.config_path} not found",
                        "run install.sh, which writes it from the documented example, or give --config FILE")
        return fail("config", ctx.config_error or "config not readable",
                    f"correct the named key in {ctx.config_path}; 'bodycam config --example' shows every key")
    from ..policy import describe

    c = ctx.config
    return ok("config", f"{ctx.config_path} is valid: device {c.device.site}/{c.device.id}, "
                        f"camera {c.camera.backend}, pre-event {c.recording.pre_event_seconds:g} s "
                        f"({c.recording.pre_event_mode}); legal profile {describe(c.policy.profile)}")


def check_recipients(ctx: Context) -> Check:
    from evidence.keys import load_recipients

    sources = ctx.config.evidence.recipients
    if not sources:
        return fail("recipients", "no evidence recipients configured: the agent will not record",
                    "install the municipality's public key with 'sudo install.sh --recipients evidence.pub' "
                    "or list it in evidence.recipients")
    try:
        recipients = load_recipients(sources)
    except BodycamError as exc:
        return fail("recipients", str(exc), "give the municipality's evidence.pub file (age1… recipient) "
                                            "in evidence.recipients")
    return ok("recipients", f"segments are encrypted to {len(recipients)} recipient(s)")


def check_keys(ctx: Context) -> Check:
    from evidence.keys import load_signing_key, parse_device_public_key

    path = Path(ctx.config.evidence.device_key)
    create = (f"create it with 'sudo install.sh' (or, as user {ctx.service_user}: "
              f"bodycam keys device --out {path.parent} --device-id {ctx.config.device.id})")
    try:
        st = path.stat()
    except FileNotFoundError:
        return fail("keys", f"device signing key {path} not found", create)
    except PermissionError:
        return warn("keys", f"cannot look at {path} as this user", SUDO)
    owner_problem = _owner_problem(ctx, path, st)
    if owner_problem:
        return owner_problem
    try:
        key = load_signing_key(path, device_id=ctx.config.device.id)
    except BodycamError as exc:
        if isinstance(exc.__context__, PermissionError) or "Permission denied" in str(exc):
            return warn("keys", f"cannot read {path} as this user", SUDO)
        return fail("keys", str(exc), f"fix the file, or move it aside and {create}")
    pub = path.with_name("device.pub")
    try:
        enrolled = parse_device_public_key(pub.read_text(encoding="ascii").strip(), str(pub))
    except (OSError, UnicodeDecodeError, BodycamError) as exc:
        return warn("keys", f"device key {key.key_id} present, but {pub} is unusable ({exc})",
                    "the back office needs device.pub to enrol the device; restore it from the enrolment record")
    if enrolled.key_id != key.key_id:
        return fail("keys", f"{pub} (key {enrolled.key_id}) does not belong to {path} (key {key.key_id})",
                    "enrol the key the device really has: ask the back office which key id it enrolled")
    if enrolled.device_id not in (None, ctx.config.device.id):
        return warn("keys", f"{pub} names device {enrolled.device_id!r}, the config says {ctx.config.device.id!r}",
                    "make device.id in the config match the enrolment, or enrol the key under the new id")
    return ok("keys", f"device signing key {key.key_id} ({path}, mode 0600) matches {pub.name}")


def _owner_problem(ctx: Context, path: Path, st: os.stat_result) -> Check | None:
    """A FAIL when the service user could not read ``path`` although root can."""
    if st.st_mode & 0o077:
        return fail("keys", f"{path} has mode {stat.filemode(st.st_mode)}: other users can read the private key",
                    f"run 'sudo chmod 600 {path}'")
    uid = service_uid(ctx.service_user)
    if uid is not None and st.st_uid != uid:
        return fail("keys", f"{path} belongs to {user_name(st.st_uid)}; the agent runs as {ctx.service_user} "
                            "and cannot read it",
                    f"run 'sudo chown {ctx.service_user}:{ctx.service_user} {path}'")
    return None


def check_agent(ctx: Context) -> Check:
    state = ctx.service_state()
    try:
        status = read_status(ctx.status_path, now=ctx.now())
    except StatusFileError as exc:
        return warn("agent", str(exc), "restart the agent: sudo systemctl restart bodycam-agent")
    if status is not None and status.running:
        doc = status.doc
        if doc.faults:
            return warn("agent", f"running, state {doc.state}, but faulty: "
                                 + "; ".join(f"{k}: {v}" for k, v in doc.faults.items()),
                        "look at 'journalctl -u bodycam-agent -b'; the lines above may name the part")
        return ok("agent", f"running, state {doc.state}")
    if status is not None and status.stopped and state != "active":
        exit_code = "?" if status.doc.exit_code is None else status.doc.exit_code
        return warn("agent", f"the agent stopped {format_duration(status.age_s)} ago (exit code {exit_code})",
                    "start it with 'sudo systemctl start bodycam-agent'; 'journalctl -u bodycam-agent -b' says why "
                    "it stopped")
    if status is not None and not status.stopped:
        return fail("agent", f"the agent stopped reporting {status.age_s:.0f} s ago (hung?)",
                    "restart it with 'sudo systemctl restart bodycam-agent' and look at "
                    "'journalctl -u bodycam-agent -b' for the reason")
    if state == "active":
        return ok("agent", "service bodycam-agent is active")
    if state is None:
        return skip("agent", "no bodycam-agent service on this machine",
                    "install it with install.sh to run the agent as a service")
    return warn("agent", f"service bodycam-agent is {state}",
                "start it with 'sudo systemctl start bodycam-agent'; 'journalctl -u bodycam-agent -b' says "
                "why it stopped")


def check_clock(ctx: Context) -> Check:
    now = ctx.now()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now))
    if now < CLOCK_FLOOR:
        return fail("clock", f"the clock says {stamp}: segments would carry a wrong time",
                    "connect the device to a network with NTP ('sudo timedatectl set-ntp true'); the Pi has "
                    "no battery-backed clock")
    synced = ctx.clock_synchronised()
    if synced:
        return ok("clock", f"synchronised ({stamp})")
    if synced is None:
        return warn("clock", f"cannot tell whether the clock is synchronised ({stamp})",
                    "check 'timedatectl' shows 'System clock synchronized: yes'")
    return warn("clock", f"not synchronised by NTP ({stamp}); segment times may drift",
                "enable network time with 'sudo timedatectl set-ntp true' and let the device reach an NTP server")
