"""A throw-away Debian 12 root for the system tests: made once by debootstrap, cached as a tarball, unpacked
per test module; commands run chrooted into it.

debootstrap costs 30-60 s and downloads about 100 MB; unpacking the cached tarball takes seconds, so the
install test and the bare-Debian test share one debootstrap per week. The cache lives in
``$BODYCAM_TEST_CACHE`` (default ``~/.cache/bodycam-tests``); delete it to force a fresh root.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import REPO, need_tool

MIRROR = "http://deb.debian.org/debian"
SUITE = "bookworm"
# PIP_CERT: pip inside the root trusts what this machine trusts (a registry proxy's CA, if there is one).
ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8",
       "PIP_CERT=/tmp/host-ca.crt", "PIP_DISABLE_PIP_VERSION_CHECK=1"]
#: A cached root older than this is made again, so security updates do not pile up in every apt run.
CACHE_MAX_AGE_S = 7 * 24 * 3600


def cache_dir() -> Path:
    return Path(os.environ.get("BODYCAM_TEST_CACHE") or Path.home() / ".cache" / "bodycam-tests")


def need_root_tools() -> None:
    """Skip unless this machine can make and enter a Debian root."""
    if os.geteuid() != 0:
        pytest.skip("needs root (debootstrap, chroot, mounts)")
    for tool, package in (("debootstrap", "debootstrap"), ("unshare", "util-linux"), ("chroot", "coreutils")):
        need_tool(tool, package)


def in_root(root: Path, *cmd: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run ``cmd`` chrooted into ``root`` with /dev and /proc; the mounts vanish with the namespace."""
    script = 'mount --rbind /dev "$0/dev" && mount -t proc proc "$0/proc" && exec chroot "$0" "$@"'
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(root),
                           "env", "-i", *ENV, *cmd], capture_output=True, text=True, timeout=timeout)


def make_root(root: Path, timings: dict[str, float]) -> None:
    """A minimal Debian 12 (debootstrap --variant=minbase, about 300 MB) at ``root``, which must not exist.

    It gets this machine's resolver and CA bundle (``/tmp/host-ca.crt``), nothing else.
    """
    start = time.monotonic()
    tarball = _cached_tarball(timings)
    root.mkdir(parents=True)
    subprocess.run(["tar", "-C", str(root), "--numeric-owner", "-xpf", str(tarball)], check=True, timeout=600)
    timings["unpack root"] = time.monotonic() - start - timings.get("debootstrap", 0.0)
    shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
    shutil.copy("/etc/ssl/certs/ca-certificates.crt", root / "tmp/host-ca.crt")


def _cached_tarball(timings: dict[str, float]) -> Path:
    """The cached minbase root as a tarball, made now if it is missing or too old (one maker at a time)."""
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / f"{SUITE}-minbase.tar"
    with open(cache / f"{SUITE}-minbase.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if tarball.exists() and time.time() - tarball.stat().st_mtime < CACHE_MAX_AGE_S:
            return tarball
        work = cache / f"{SUITE}-minbase.new"
        shutil.rmtree(work, ignore_errors=True)
        start = time.monotonic()
        out = subprocess.run(["debootstrap", "--variant=minbase", SUITE, str(work), MIRROR],
                             capture_output=True, text=True, timeout=1200)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        timings["debootstrap"] = time.monotonic() - start
        partial = tarball.with_suffix(".tar.part")
        subprocess.run(["tar", "-C", str(work), "--numeric-owner", "-cf", str(partial), "."], check=True, timeout=600)
        partial.rename(tarball)
        shutil.rmtree(work, ignore_errors=True)
        return tarball


def copy_checkout(target: Path) -> None:
    """The checkout as it is on disk (committed or not): no venv, no caches, no git metadata."""
    target.mkdir()
    pack = subprocess.Popen(["tar", "-C", str(REPO), "--exclude=./.git", "--exclude=./.venv", "--exclude=__pycache__",
                             "--exclude=*.egg-info", "--exclude=.pytest_cache", "--exclude=./bodycam-demo",
                             "--exclude=./build", "--exclude=.hypothesis", "-cf", "-", "."], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-C", str(target), "-xf", "-"], stdin=pack.stdout, check=True, timeout=120)
    assert pack.wait(timeout=120) == 0
