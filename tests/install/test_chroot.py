"""install.sh for real, in a throw-away Debian 12 root: files, user, permissions, unit; the installed
system booted (systemd-nspawn) to start the real unit; a later run with --recipients enables recording;
a second run changes nothing; uninstall keeps evidence and keys; purge is refused while evidence waits.

Needs root, debootstrap, unshare and chroot (systemd-nspawn for the boot), and reaches Debian's
mirror and PyPI (package registries). All of it takes about 2.5 min here (debootstrap 30 s, once a week:
tests/install/debian.py caches the root; first install 30 s, boot 15 s, reinstall 20 s), so it is a
system test, left out of the fast loop (-m "not system"). Off a Pi install.sh picks simulation mode,
which is what runs here; the Pi-only steps are covered by the --dry-run tests.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

from agent import config as config_mod
from evidence.keys import generate_evidence_keys, generate_receipt_key

from .conftest import SUMMARY, UNITS, add_segment, need_tool
from .debian import copy_checkout, in_root, make_root, need_root_tools

pytestmark = [pytest.mark.system, pytest.mark.timeout(1500)]  # downloads: Debian packages, the agent's wheels

TIMINGS: dict[str, float] = {}


def install(root: Path, *args: str) -> subprocess.CompletedProcess:
    start = time.monotonic()
    out = in_root(root, "/src/install.sh", *args)
    runs = sum(name.startswith("run ") for name in TIMINGS)
    TIMINGS[f"run {runs + 1}: install.sh {' '.join(args)}"[:60]] = time.monotonic() - start
    return out


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    need_root_tools()
    path = tmp_path_factory.mktemp("debian") / "root"
    make_root(path, TIMINGS)
    copy_checkout(path / "src")
    office = tmp_path_factory.mktemp("office")
    generate_evidence_keys(office)
    shutil.copy(office / "evidence.pub", path / "tmp/evidence.pub")
    receipt = generate_receipt_key(office)
    shutil.copy(receipt.pub_path, path / "tmp/receipt.pub")
    yield path
    SUMMARY.append("chroot test timings: " + ", ".join(f"{k.strip()}: {v:.0f} s" for k, v in TIMINGS.items()))
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def first_run(root):
    return install(root, "--device-id", "cam-0042", "--site", "musterstadt", "--recipients", "/tmp/evidence.pub",
                   "--receipt-key", "/tmp/receipt.pub")


def ids(root: Path, file: str) -> dict[str, int]:
    """Names to numbers from the root's /etc/passwd or /etc/group."""
    table = {}
    for line in (root / "etc" / file).read_text().splitlines():
        parts = line.split(":")
        table[parts[0]] = int(parts[2])
    return table


def mode_owner(root: Path, path: str) -> tuple[int, str, str]:
    st = (root / path.lstrip("/")).stat()
    users = {v: k for k, v in ids(root, "passwd").items()}
    groups = {v: k for k, v in ids(root, "group").items()}
    return stat.S_IMODE(st.st_mode), users[st.st_uid], groups[st.st_gid]


def test_first_install(first_run):
    assert first_run.returncode == 0, first_run.stdout[-4000:] + first_run.stderr[-4000:]
    assert "[done]  install the bodycam software" in first_run.stdout
    assert "ed25519:" in first_run.stdout and "cam-0042" in first_run.stdout


def test_user_and_groups(root, first_run):
    passwd = {line.split(":")[0]: line.split(":") for line in (root / "etc/passwd").read_text().splitlines()}
    assert passwd["bodycam"][5:] == ["/var/lib/bodycam", "/usr/sbin/nologin"]
    assert int(passwd["bodycam"][2]) < 1000  # a system user
    for line in (root / "etc/group").read_text().splitlines():
        name, _, _, members = line.split(":")
        if name in ("video", "i2c", "spi", "gpio"):
            assert "bodycam" in members.split(","), line


@pytest.mark.parametrize("path, expected", [
    ("/etc/bodycam", (0o750, "root", "bodycam")),
    ("/etc/bodycam/agent.toml", (0o640, "root", "bodycam")),
    ("/etc/bodycam/evidence.pub", (0o644, "root", "root")),
    ("/etc/bodycam/keys", (0o700, "bodycam", "bodycam")),
    ("/etc/bodycam/keys/device.key", (0o600, "bodycam", "bodycam")),
    ("/etc/bodycam/keys/receipt.pub", (0o644, "root", "root")),
    ("/etc/bodycam/mqtt", (0o750, "bodycam", "bodycam")),
    ("/etc/bodycam/mqtt/client.key", (0o600, "bodycam", "bodycam")),
    ("/var/lib/bodycam", (0o750, "bodycam", "bodycam")),
    ("/var/lib/bodycam/spool", (0o750, "bodycam", "bodycam")),
    ("/var/lib/bodycam/state", (0o750, "bodycam", "bodycam")),
    ("/var/lib/bodycam/audit", (0o750, "bodycam", "bodycam")),
    ("/etc/systemd/system/bodycam-agent.service", (0o644, "root", "root")),
])
def test_permissions(root, first_run, path, expected):
    assert mode_owner(root, path) == expected


def test_config_keys_and_request(root, first_run):
    cfg = config_mod.load(root / "etc/bodycam/agent.toml")
    assert (cfg.device.id, cfg.device.site, cfg.camera.backend) == ("cam-0042", "musterstadt", "synthetic")
    assert cfg.evidence.recipients == ("/etc/bodycam/evidence.pub",)
    assert (root / "etc/bodycam/keys/device.pub").read_text().split()[1] == "cam-0042"
    subject = in_root(root, "openssl", "req", "-in", "/etc/bodycam/mqtt/client.csr", "-noout", "-subject")
    assert "CN = cam-0042" in subject.stdout and "O = musterstadt" in subject.stdout
    cfgfile = (root / "opt/bodycam/venv/pyvenv.cfg").read_text()
    assert "include-system-site-packages = true" in cfgfile
    assert os.readlink(root / "usr/local/bin/bodycam") == "/opt/bodycam/venv/bin/bodycam"


def test_unit_installed_enabled_and_in_simulation(root, first_run):
    unit = root / "etc/systemd/system/bodycam-agent.service"
    assert unit.read_text() == (UNITS / "bodycam-agent.service").read_text()
    assert os.readlink(root / "etc/systemd/system/multi-user.target.wants/bodycam-agent.service") == \
        "/etc/systemd/system/bodycam-agent.service"
    dropin = (root / "etc/systemd/system/bodycam-agent.service.d/simulation.conf").read_text()
    assert "Environment=GPIOZERO_PIN_FACTORY=mock" in dropin
    verify = in_root(root, "systemd-analyze", "verify", "--man=no", "bodycam-agent.service")
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr
    security = in_root(root, "systemd-analyze", "security", "--offline=true", "--threshold=20",
                       "bodycam-agent.service")
    assert security.returncode == 0, security.stdout[-2000:]


def test_agent_runs_as_the_service_user(root, first_run):
    """The installed command reads the config and the key as user bodycam: what the service will do."""
    out = in_root(root, "runuser", "-u", "bodycam", "--", "/opt/bodycam/venv/bin/bodycam", "config", "--check",
                  "/etc/bodycam/agent.toml")
    assert out.returncode == 0 and "musterstadt/cam-0042" in out.stdout, out.stderr
    out = in_root(root, "runuser", "-u", "bodycam", "--", "/opt/bodycam/venv/bin/python", "-c",
                  "from evidence.keys import load_signing_key; load_signing_key('/etc/bodycam/keys/device.key')")
    assert out.returncode == 0, out.stderr


def test_doctor_in_the_installed_system(root, first_run):
    # Until agent/cli.py registers it, call the subcommand the way 'bodycam doctor' will.
    out = in_root(root, "/opt/bodycam/venv/bin/python", "-c",
                  "import argparse, sys; from agent import doctor_cli; "
                  "sys.exit(doctor_cli.cmd_doctor(argparse.Namespace(config='/etc/bodycam/agent.toml', json=False)))")
    levels = {line.split()[1]: line.split()[0] for line in out.stdout.splitlines()
              if line.split() and line.split()[0] in ("OK", "WARN", "FAIL", "SKIP")}
    for name in ("config", "recipients", "keys", "camera", "encoder", "spool", "backlog"):
        assert levels.get(name) == "OK", out.stdout
    # Not enrolled yet: no CA or client certificate, so the broker may FAIL; nothing else may.
    assert {name for name, level in levels.items() if level == "FAIL"} <= {"broker"}, out.stdout


BOOT_RUNNER = """[Unit]
Description=bodycam boot check (tests/install/boot_check.sh), then power off
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/bin/sh /usr/local/lib/bodycam-boot-check.sh
[Install]
WantedBy=multi-user.target
"""


@pytest.fixture(scope="module")
def booted(root, first_run):
    """Boot the installed system once (systemd-nspawn) and run boot_check.sh in it; its results."""
    nspawn = need_tool("systemd-nspawn", "systemd-container")
    here = Path(__file__).parent
    placed = {root / "usr/local/lib/bodycam-boot-check.sh": (here / "boot_check.sh").read_text(),
              root / "usr/local/lib/bodycam-sandbox-probe.py": (here / "sandbox_probe.py").read_text(),
              root / "etc/systemd/system/boot-check.service": BOOT_RUNNER}
    for path, text in placed.items():
        path.write_text(text)
    wants = root / "etc/systemd/system/multi-user.target.wants/boot-check.service"
    wants.symlink_to("/etc/systemd/system/boot-check.service")
    start = time.monotonic()
    try:
        run = subprocess.run([nspawn, "-D", str(root), "--boot", "--register=no", "--keep-unit", "--quiet",
                              "--console=pipe"], capture_output=True, text=True, timeout=600)
        TIMINGS["boot check"] = time.monotonic() - start
        out = root / "boot-check"
        files = {p.name: p.read_text() for p in out.iterdir()} if out.is_dir() else {}
        files["nspawn"] = run.stdout[-3000:] + run.stderr[-3000:]
        results = dict(line.split("=", 1) for line in files.get("result", "").splitlines() if "=" in line)
        yield results, files
    finally:
        for path in (*placed, wants):
            path.unlink(missing_ok=True)
        shutil.rmtree(root / "boot-check", ignore_errors=True)


def test_the_installed_service_starts_reports_reloads_and_stops(booted):
    """The real unit and `bodycam run`: READY=1 under the hardening, a status file, SIGHUP, SIGTERM."""
    results, files = booted
    context = json.dumps(results, indent=1) + files.get("journal-real", "")[-3000:] + files["nspawn"]
    assert results.get("real_start") == "0" and results.get("real_state") == "active", context
    assert results.get("real_user") == "bodycam"
    status = json.loads(files["status.json"])
    assert status["device"] == "cam-0042" and status["state"] == "standby", status
    assert results.get("status_rc") == "0" and "running" in files["status.txt"], files["status.txt"]
    assert results.get("reload") == "0" and results.get("after_reload") == "active", context
    assert results.get("real_stop") == "0" and results.get("real_result") == "success", context


def test_the_evidence_chain_runs_under_the_units_hardening(booted):
    """The unit with the probe as ExecStart: capture, seal, spool, verify, export all work inside it."""
    results, files = booted
    assert results.get("probe_start") == "0", json.dumps(results) + files.get("journal-probe", "")[-3000:]
    steps = json.loads(files["probe.json"])
    failed = {name: step for name, step in steps.items() if not step["ok"]}
    assert not failed, json.dumps(failed, indent=1)
    assert steps["etc_read_only"]["value"].startswith("'blocked")
    assert steps["demo"]["value"] == "0"  # bodycam demo's exit code: everything verified and exported
    assert results.get("probe_stop") == "0"


def doctor_levels(root: Path) -> tuple[dict[str, str], str]:
    """`bodycam doctor` in the installed system: each check's level, and the whole report."""
    out = in_root(root, "/usr/local/bin/bodycam", "doctor", "--config", "/etc/bodycam/agent.toml")
    levels = {line.split()[1]: line.split()[0] for line in out.stdout.splitlines()
              if line.split() and line.split()[0] in ("OK", "WARN", "FAIL", "SKIP")}
    return levels, out.stdout + out.stderr


def test_recipients_given_on_a_later_run_enable_recording(root, first_run):
    """#11.20: a first run without --recipients leaves `recipients = []`; the documented fix, running
    install.sh again with --recipients, must list the key in the kept config so the agent records."""
    config = root / "etc/bodycam/agent.toml"
    installed = config.read_text()
    assert installed.count('\nrecipients = ["/etc/bodycam/evidence.pub"]\n') == 1
    # The state a first run without --recipients leaves, plus an edit of IT's own that must survive.
    without = installed.replace('\nrecipients = ["/etc/bodycam/evidence.pub"]\n', "\nrecipients = []\n") \
        .replace("[evidence]\n", "[evidence]\n# IT: key from the evidence office, ticket 4711\n")
    config.write_text(without)
    (root / "etc/bodycam/evidence.pub").unlink()
    levels, report = doctor_levels(root)
    assert levels.get("recipients") == "FAIL" and "will not record" in report, report

    out = install(root, "--recipients", "/tmp/evidence.pub")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "[done]  list /etc/bodycam/evidence.pub in evidence.recipients" in out.stdout, out.stdout
    assert "Evidence recipients:" not in out.stdout  # no longer among the next steps
    assert config.read_text() == without.replace("\nrecipients = []\n",
                                                 '\nrecipients = ["/etc/bodycam/evidence.pub"]\n')
    assert mode_owner(root, "/etc/bodycam/agent.toml") == (0o640, "root", "bodycam")
    levels, report = doctor_levels(root)
    assert levels.get("recipients") == "OK" and "will not record" not in report, report


def test_second_run_changes_nothing(root, first_run):
    out = install(root)
    assert out.returncode == 0, out.stderr
    assert "Nothing to change: everything is already in place." in out.stdout
    assert "[done]" not in out.stdout and "[would]" not in out.stdout


def test_uninstall_keeps_evidence_then_purge_waits_for_receipts(root, first_run):
    pub_before = (root / "etc/bodycam/keys/device.pub").read_text()
    spool = root / "var/lib/bodycam/spool"
    add_segment(spool, 1)

    refused = install(root, "--uninstall", "--purge")
    assert refused.returncode == 1 and "refusing to purge: 1 segment(s)" in refused.stderr
    assert (root / "etc/systemd/system/bodycam-agent.service").exists()  # nothing was changed

    out = install(root, "--uninstall")
    assert out.returncode == 0, out.stderr
    assert not (root / "etc/systemd/system/bodycam-agent.service").exists()
    assert not (root / "opt/bodycam").exists() and not (root / "usr/local/bin/bodycam").is_symlink()
    assert (root / "etc/bodycam/keys/device.key").exists() and (spool / "cam-0042-0000000001.age").exists()

    again = install(root)  # a reinstall picks up the kept key and config
    assert again.returncode == 0, again.stderr
    assert "config /etc/bodycam/agent.toml kept" in again.stdout
    assert (root / "etc/bodycam/keys/device.pub").read_text() == pub_before

    (spool / "cam-0042-0000000001.receipt.json").write_text("{}")
    purged = install(root, "--uninstall", "--purge")
    assert purged.returncode == 0, purged.stdout + purged.stderr
    for gone in ("etc/bodycam", "var/lib/bodycam", "opt/bodycam", "etc/systemd/system/bodycam-agent.service"):
        assert not (root / gone).exists(), gone
    assert "bodycam" not in ids(root, "passwd")
