"""The systemd units pass `systemd-analyze verify` and stay at an exposure of 2.0 or less in
`systemd-analyze security --offline=true`, while keeping the camera, I2C and GPIO reachable."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from .conftest import UNITS, need_tool

UNIT_NAMES = ("bodycam-agent.service", "bodycam-receiver.service", "bodycam-office-retention.service",
              "bodycam-custodian.service", "bodycam-review.service")
MAX_EXPOSURE = 2.0


def staged(unit: str, tmp_path: Path) -> Path:
    """A copy whose commands name executables that exist here (verify checks that they do)."""
    for name in ("bodycam", "bodycam-office"):
        stub = tmp_path / name
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
    path = tmp_path / unit
    path.write_text((UNITS / unit).read_text().replace("/opt/bodycam/venv/bin/", f"{tmp_path}/"))
    return path


def exposure(unit_path: Path) -> float:
    tool = need_tool("systemd-analyze", "systemd")
    out = subprocess.run([tool, "security", "--offline=true", str(unit_path)], capture_output=True,
                         text=True, timeout=60)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out.stdout)
    assert match, out.stdout + out.stderr
    return float(match.group(1))


def directives(unit: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in (UNITS / unit).read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


@pytest.mark.parametrize("unit", UNIT_NAMES)
def test_verify(unit, tmp_path):
    tool = need_tool("systemd-analyze", "systemd")
    out = subprocess.run([tool, "verify", "--man=no", str(staged(unit, tmp_path))], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and not out.stderr.strip(), out.stderr


@pytest.mark.parametrize("unit", UNIT_NAMES)
def test_exposure_at_most_two(unit):
    level = exposure(UNITS / unit)
    print(f"{unit}: exposure {level}")
    assert level <= MAX_EXPOSURE


def test_agent_reaches_its_hardware_and_nothing_else():
    d = directives("bodycam-agent.service")
    assert d["DevicePolicy"] == ["closed"]
    allowed = {v.split()[0] for v in d["DeviceAllow"]}
    assert allowed == {"char-video4linux", "char-media", "char-dma_heap", "char-i2c", "char-spi",
                       "char-gpiochip"}
    assert "PrivateDevices" not in d and "PrivateUsers" not in d  # both would lock out the hardware
    assert d["User"] == ["bodycam"] and d["NoNewPrivileges"] == ["yes"]
    assert d["ProtectSystem"] == ["strict"] and d["ReadWritePaths"] == ["/var/lib/bodycam"]
    assert d["CapabilityBoundingSet"] == [""]


def test_agent_service_contract():
    """What the runtime relies on: notify + watchdog, reload by SIGHUP, time to seal on SIGTERM."""
    d = directives("bodycam-agent.service")
    assert d["Type"] == ["notify"] and d["NotifyAccess"] == ["main"]
    assert int(d["WatchdogSec"][0]) > 0 and d["Restart"] == ["always"]
    assert d["ExecStart"] == ["/opt/bodycam/venv/bin/bodycam run --config /etc/bodycam/agent.toml"]
    assert d["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert int(d["TimeoutStopSec"][0]) > 60  # the longest segment is 60 s
    assert d["RuntimeDirectory"] == ["bodycam"]  # /run/bodycam/status.json for 'bodycam status'
    # after any end of the agent, a crash or SIGKILL included, the panel must not keep "AUFNAHME" or a face
    assert d["ExecStopPost"] == ["-/opt/bodycam/venv/bin/bodycam display-off --config /etc/bodycam/agent.toml"]


def test_receiver_contract():
    d = directives("bodycam-receiver.service")
    assert d["ExecStart"] == ["/opt/bodycam/venv/bin/bodycam-office receiver --config /etc/bodycam/receiver.toml"]
    assert d["PrivateDevices"] == ["yes"] and d["User"] == ["bodycam-receiver"]
    assert d["ReadWritePaths"] == ["/srv/bodycam"]  # backoffice.settings.ReceiverSettings' store and incoming dirs
    # The receiver says READY=1 and feeds the watchdog only while its work moves (#11.5): a receiver
    # stuck for good is restarted instead of idling at 0 % CPU.
    assert d["Type"] == ["notify"] and d["NotifyAccess"] == ["main"] and d["Restart"] == ["always"]
    assert int(d["WatchdogSec"][0]) > 0


def test_retention_job_contract(tmp_path):
    d = directives("bodycam-office-retention.service")
    assert d["Type"] == ["oneshot"]
    assert d["ExecStart"] == ["/opt/bodycam/venv/bin/bodycam-office retention run"]
    # it deletes from the receiver's store, so it is the store's owner; and it writes the catalog and log
    assert d["User"] == ["bodycam-receiver"] and d["ReadWritePaths"] == ["/srv/bodycam /var/lib/bodycam-office"]
    assert "BODYCAM_OFFICE_STORE=/srv/bodycam/store" in d["Environment"]
    timer = directives("bodycam-office-retention.timer")
    assert timer["Unit"] == ["bodycam-office-retention.service"] and timer["Persistent"] == ["true"]
    tool = need_tool("systemd-analyze", "systemd")
    staged("bodycam-office-retention.service", tmp_path)
    (tmp_path / "bodycam-office-retention.timer").write_text((UNITS / "bodycam-office-retention.timer").read_text())
    out = subprocess.run([tool, "verify", "--man=no", str(tmp_path / "bodycam-office-retention.timer")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and not out.stderr.strip(), out.stderr


def test_custodian_holds_the_key_alone_with_no_network_and_writes_only_the_audit_log():
    """The evidence key reaches this service only, as a credential; it has no network and no other writable path,
    its memory is never swapped or dumped, and its socket's group decides who may ask it."""
    d = directives("bodycam-custodian.service")
    assert d["ExecStart"] == ["/opt/bodycam/venv/bin/bodycam-office custodian"]
    assert d["User"] == ["bodycam-custodian"] and d["Group"] == ["bodycam-custodian"]
    assert d["Type"] == ["notify"] and d["Restart"] == ["always"]
    assert sorted(d["LoadCredential"]) == ["evidence.key:/etc/bodycam/custodian/evidence.key",
                                           "office.key:/var/lib/bodycam-office/keys/office.key"]
    assert d["PrivateNetwork"] == ["yes"] and d["RestrictAddressFamilies"] == ["AF_UNIX"]
    assert d["IPAddressDeny"] == ["any"]
    assert d["ProtectSystem"] == ["strict"] and d["ReadWritePaths"] == ["/var/lib/bodycam-office/audit"]
    assert d["NoNewPrivileges"] == ["yes"] and d["PrivateTmp"] == ["yes"] and d["CapabilityBoundingSet"] == [""]
    assert d["MemoryDenyWriteExecute"] == ["yes"] and d["MemorySwapMax"] == ["0"] and d["LimitCORE"] == ["0"]
    assert d["RuntimeDirectory"] == ["bodycam-custodian"] and d["RuntimeDirectoryMode"] == ["0750"]
    assert "PrivateUsers" not in d  # in a user namespace the audit log's peer uid would always be nobody
    assert "BODYCAM_CUSTODIAN_SOCKET=/run/bodycam-custodian/custodian.sock" in d["Environment"]
    # the other units never see the evidence key
    for unit in ("bodycam-receiver.service", "bodycam-office-retention.service"):
        assert "evidence.key" not in (UNITS / unit).read_text()


def test_review_app_contract():
    """gunicorn on loopback for the proxy; its own user in the receiver's group (an approved deletion removes
    store files) and in the custodian's (its socket); the office key and the session secret as credentials;
    never the evidence key."""
    d = directives("bodycam-review.service")
    assert d["ExecStart"] == ["/opt/bodycam/venv/bin/bodycam-office web --bind 127.0.0.1:8470"]
    assert d["Type"] == ["notify"] and d["NotifyAccess"] == ["main"]  # gunicorn's arbiter says READY=1
    assert d["User"] == ["bodycam-review"] and d["Group"] == ["bodycam-receiver"] and d["UMask"] == ["0007"]
    # it asks the custodian to decrypt, over the socket only that group may reach
    assert d["SupplementaryGroups"] == ["bodycam-custodian"]
    assert "BODYCAM_CUSTODIAN_SOCKET=/run/bodycam-custodian/custodian.sock" in d["Environment"]
    custodian = directives("bodycam-custodian.service")
    assert "BODYCAM_CUSTODIAN_SOCKET=/run/bodycam-custodian/custodian.sock" in custodian["Environment"]
    assert custodian["Group"] == ["bodycam-custodian"] and custodian["RuntimeDirectoryMode"] == ["0750"]
    assert d["ReadWritePaths"] == ["/srv/bodycam/store /var/lib/bodycam-office"]
    assert "BODYCAM_REVIEW_BEHIND_TLS=1" in d["Environment"]
    assert "BODYCAM_OFFICE_KEY=%d/office.key" in d["Environment"]
    assert "BODYCAM_OFFICE_SECRET_KEY_FILE=%d/review-secret" in d["Environment"]
    assert d["LoadCredential"] == ["office.key:/var/lib/bodycam-office/keys/office.key",
                                   "review-secret:/etc/bodycam/review-secret"]
    text = (UNITS / "bodycam-review.service").read_text()
    assert "evidence.key" not in text and "identity" not in text.lower()


def test_the_review_apps_group_may_write_what_the_receiver_and_retention_create():
    for unit in ("bodycam-receiver.service", "bodycam-office-retention.service"):
        assert directives(unit)["UMask"] == ["0007"], unit
