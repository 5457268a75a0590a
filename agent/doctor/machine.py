"""Read-only questions to the machine the doctor runs on: which Pi, is the clock synchronised, does
systemd run the service, who is the service user."""

from __future__ import annotations

import ctypes
import pwd
import shutil
import subprocess
from pathlib import Path

_TIME_ERROR = 5  # adjtimex(2): the clock is not synchronised


def raspberry_pi_model(path: str = "/proc/device-tree/model") -> str | None:
    """'Raspberry Pi 5 Model B Rev 1.0', or None off a Pi (the same test install.sh makes)."""
    try:
        model = Path(path).read_bytes().rstrip(b"\0").decode("ascii", "replace")
    except OSError:
        return None
    return model if "Raspberry Pi" in model else None


def kernel_clock_synchronised() -> bool | None:
    """Ask the kernel (adjtimex, read-only) whether NTP has synchronised the clock, as timedatectl does."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        timex = ctypes.create_string_buffer(512)  # struct timex (~208 bytes); modes = 0 only reads
        state = libc.adjtimex(timex)
    except (OSError, AttributeError):
        return None
    return None if state < 0 else state != _TIME_ERROR


def systemd_service_state(unit: str) -> str | None:
    """``systemctl is-active``'s answer, or None where systemd is not running or the unit is unknown."""
    if not Path("/run/systemd/system").is_dir() or shutil.which("systemctl") is None:
        return None
    try:
        out = subprocess.run(["systemctl", "is-active", unit], capture_output=True, text=True, timeout=10,
                             check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    state = out.stdout.strip()
    return None if state in ("", "unknown") else state


def service_uid(user: str) -> int | None:
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return None


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"
