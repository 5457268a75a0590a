"""Disk pressure levels from a fake statvfs; the measurement never touches files."""

from __future__ import annotations

import dataclasses
import errno
import os

import pytest

from agent.diskspace import DiskPressure, PressureLevel
from base.errors import StorageError, StorageFullError, storage_error
from base.errors import ConfigError
from agent import config

MIB = 1024 * 1024


def fake_statvfs(free_mib: float, total_mib: float = 30_000, frsize: int = 4096, reserved_mib: float = 100):
    def statvfs(path):
        blocks = int(total_mib * MIB) // frsize
        bavail = int(free_mib * MIB) // frsize
        bfree = bavail + int(reserved_mib * MIB) // frsize  # root's reserve: not usable by the agent
        return os.statvfs_result((frsize, frsize, blocks, bfree, bavail, 0, 0, 0, 0, 255))
    return statvfs


@pytest.mark.parametrize("free_mib, level", [
    (10_000, PressureLevel.OK),
    (2048, PressureLevel.OK),      # exactly at the warning level is still OK
    (2047, PressureLevel.WARN),
    (256, PressureLevel.WARN),
    (255, PressureLevel.CRITICAL),
    (0, PressureLevel.CRITICAL),
])
def test_levels(free_mib, level):
    snap = DiskPressure("/spool", warn_free_mib=2048, critical_free_mib=256,
                        statvfs=fake_statvfs(free_mib)).measure()
    assert snap.level is level
    assert snap.free_bytes == free_mib * MIB
    assert snap.total_bytes == 30_000 * MIB
    assert snap.reason.startswith({"ok": "storage ok", "warn": "storage low", "critical": "storage critical"}[level.value])
    assert "/spool" in snap.reason


def test_critical_reason_says_what_happens():
    snap = DiskPressure("/spool", 2048, 256, statvfs=fake_statvfs(100)).measure()
    assert "100 MiB free" in snap.reason and "256 MiB minimum" in snap.reason
    assert "no new recording" in snap.reason
    assert snap.level.rank > PressureLevel.WARN.rank
    assert snap.as_dict()["level"] == "critical"


def test_snapshot_is_immutable():
    snap = DiskPressure("/spool", 2048, 256, statvfs=fake_statvfs(5000)).measure()
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.level = PressureLevel.CRITICAL
    assert 0.0 < snap.used_fraction < 1.0


def test_thresholds_are_checked_once_by_the_storage_section():
    with pytest.raises(ConfigError, match=r"agent.toml: storage.critical_free_mib \(200\) must not exceed"):
        config.loads("[storage]\nwarn_free_mib = 100\ncritical_free_mib = 200\n", "agent.toml")
    with pytest.raises(ConfigError, match="out of range"):
        config.loads("[storage]\ncritical_free_mib = -1\n", "agent.toml")


def test_unreadable_file_system_is_a_storage_error():
    def missing(path):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)

    with pytest.raises(StorageError, match="mounted"):
        DiskPressure("/media/sd", 2048, 256, statvfs=missing).measure()


def test_real_statvfs_works_on_this_machine(tmp_path):
    snap = DiskPressure(tmp_path, 0, 0).measure()
    assert snap.level is PressureLevel.OK and snap.total_bytes > 0


def test_errno_mapping():
    assert isinstance(storage_error(OSError(errno.ENOSPC, "x"), "/a", "writing"), StorageFullError)
    assert "read-only" in str(storage_error(OSError(errno.EROFS, "x"), "/a", "writing"))
    assert "failing" in str(storage_error(OSError(errno.EIO, "x"), "/a", "writing"))
    err = storage_error(OSError(errno.EACCES, "x"), "/var/lib/bodycam/spool", "writing")
    assert err.path == "/var/lib/bodycam/spool" and "/var/lib/bodycam/spool" in str(err)
