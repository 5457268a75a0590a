"""The README's two commands on a bare Debian 12 (#11.19): debootstrap minbase with python3 and git, as a
container or a cloud image is. `.ci/dev demo` must set everything up and run the demo with its local
broker; `.ci/dev test -m "not system"` must then run the fast tests without one skipped for a missing tool.

Needs root, debootstrap, unshare and chroot, and reaches Debian's mirror and PyPI. The root comes from
the cache tests/install/debian.py keeps; the rest (Debian packages, the venv's wheels, the demo, the fast
tests) takes several minutes, which is why this is a system test.
"""

from __future__ import annotations

import re
import shutil
import time

import pytest

from .conftest import SUMMARY
from .debian import copy_checkout, in_root, make_root, need_root_tools

pytestmark = [pytest.mark.system, pytest.mark.timeout(2400)]

TIMINGS: dict[str, float] = {}


def timed(name: str, root, *cmd: str, timeout: float = 900):
    start = time.monotonic()
    out = in_root(root, *cmd, timeout=timeout)
    TIMINGS[name] = time.monotonic() - start
    return out


@pytest.fixture(scope="module")
def bare_root(tmp_path_factory):
    """Debian minbase plus python3 and git, and the checkout in /src: nothing else."""
    need_root_tools()
    root = tmp_path_factory.mktemp("bare") / "root"
    make_root(root, TIMINGS)
    out = timed("apt python3 git", root, "sh", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive "
                "apt-get install -y -qq --no-install-recommends python3 git >/dev/null")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    copy_checkout(root / "src")
    yield root
    SUMMARY.append("bare Debian timings: " + ", ".join(f"{k}: {v:.0f} s" for k, v in TIMINGS.items()))
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def demo(bare_root):
    """`.ci/dev demo` with a short recording: 2 s pre-event window, 3 s standby, 4 s recording, small frames."""
    return timed(".ci/dev demo", bare_root, "sh", "-c", "cd /src && .ci/dev demo --seconds 4 --pre-event 2 "
                 "--width 640 --height 360")


def test_ci_dev_demo_sets_everything_up_and_runs_the_demo(demo):
    context = demo.stdout[-4000:] + demo.stderr[-4000:]
    assert demo.returncode == 0, context
    assert "local back office: mosquitto with client certificates" in demo.stdout, context  # not the fallback
    assert re.search(r"^verify \S+ \(device public key only\): OK$", demo.stdout, re.M), context
    assert re.search(r"frames decoded from the MP4, frames \d+\.\.\d+, continuous; frames lost: 0", demo.stdout), \
        context


def test_ci_dev_test_runs_the_fast_tests_with_every_tool_present(bare_root, demo):
    """What the tests call (systemd-analyze, /bin/kill, age, mosquitto, shellcheck, runuser …) is there."""
    assert demo.returncode == 0, "the set-up failed; see the demo test"
    out = timed(".ci/dev test", bare_root, "sh", "-c", 'cd /src && .ci/dev test -m "not system" -n 4 -q -x '
                "-p no:cacheprovider", timeout=1200)
    context = out.stdout[-6000:] + out.stderr[-3000:]
    assert out.returncode == 0, context
    assert "is not installed" not in out.stdout, context  # tests/install's need_tool skips
    assert " passed" in out.stdout.splitlines()[-1], context
