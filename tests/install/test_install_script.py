"""install.sh without installing: shellcheck, arguments, the --dry-run plan, and its helper functions
(sourced, so the purge guard and the config it writes are tested on their own)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from agent import config as config_mod

from .conftest import INSTALL_SH, REPO, add_segment, need_tool

INSTALLED_PATHS = ("/opt/bodycam", "/etc/bodycam", "/var/lib/bodycam", "/etc/systemd/system/bodycam-agent.service",
                   "/usr/local/bin/bodycam")


def run(*args: str, user: str | None = None) -> subprocess.CompletedProcess:
    cmd = ["bash", str(INSTALL_SH), *args]
    if user:
        cmd = ["runuser", "-u", user, "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd="/")


def source(script: str, *args: str, **env) -> subprocess.CompletedProcess:
    """Run ``script`` in bash after sourcing install.sh (its functions, nothing executed)."""
    return subprocess.run(["bash", "-c", f'source "{INSTALL_SH}"; {script}', "bash", *args],
                          capture_output=True, text=True, timeout=60, env={**os.environ, **env})


def installed_here() -> bool:
    return any(Path(p).exists() for p in INSTALLED_PATHS)


def test_shellcheck_clean():
    tool = need_tool("shellcheck", "shellcheck")
    scripts = [str(INSTALL_SH), str(REPO / ".ci" / "dev"), str(REPO / ".ci" / "run")]
    out = subprocess.run([tool, "--severity=style", *scripts], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout


def test_help_and_bad_arguments():
    assert run("--help").returncode == 0
    out = run("--frobnicate")
    assert out.returncode == 2 and "unknown option '--frobnicate'" in out.stderr
    out = run("--dry-run", "--device-id", "Cam 1")
    assert out.returncode == 2 and "not a valid id" in out.stderr
    out = run("--dry-run", "--mode", "toaster")
    assert out.returncode == 2


def test_dry_run_prints_the_plan_and_changes_nothing():
    before = {p: Path(p).exists() for p in INSTALLED_PATHS}
    out = run("--dry-run", "--device-id", "cam-0001", "--site", "musterstadt")
    assert out.returncode == 0, out.stderr
    assert {p: Path(p).exists() for p in INSTALLED_PATHS} == before
    assert "Nothing was changed" in out.stdout or "Nothing to change" in out.stdout
    if installed_here():
        pytest.skip("bodycam is installed on this machine: the plan of a fresh install cannot be shown")
    plan = out.stdout
    for step in ("[would] create system user bodycam",
                 "[would] create virtual environment /opt/bodycam/venv with --system-site-packages",
                 "[would] write /etc/bodycam/agent.toml for device cam-0001 (simulation mode)",
                 "[would] directory /var/lib/bodycam/spool (750 bodycam:bodycam)",
                 "[would] create the device signing key /etc/bodycam/keys/device.key (for device cam-0001)",
                 "[would] create the certificate request /etc/bodycam/mqtt/client.csr (CN=cam-0001, O=musterstadt)",
                 "[would] install unit /etc/systemd/system/bodycam-agent.service",
                 "[would] write /etc/systemd/system/bodycam-agent.service.d/simulation.conf",
                 "[would] enable bodycam-agent.service at boot"):
        assert step in plan, plan
    assert "raspi-config" not in plan


def test_dry_run_on_a_pi_enables_camera_i2c_and_spi():
    out = run("--dry-run", "--mode", "pi")
    assert out.returncode == 0, out.stderr
    assert "pi mode" in out.stdout and "raspi-config" in out.stdout and "SPI" in out.stdout
    if not installed_here():
        assert "python3-picamera2" in out.stdout and "python3-spidev" in out.stdout
        assert "simulation.conf" not in out.stdout


def test_uninstall_dry_run():
    out = run("--uninstall", "--purge", "--dry-run")
    assert out.returncode in (0, 1), out.stderr  # 1: this machine holds unacknowledged segments
    assert "uninstall and purge" in out.stdout


def test_refuses_to_change_anything_without_root():
    if os.geteuid() != 0:
        out = run()
    else:
        need_tool("runuser", "util-linux")
        out = run(user="nobody")
        if "Permission denied" in out.stderr:
            pytest.skip("user nobody cannot read the checkout")
    assert out.returncode == 1 and "run as root" in out.stderr


# --- the purge guard --------------------------------------------------------------------------

def test_counts_segments_without_receipt(tmp_path):
    add_segment(tmp_path, 1, receipt=True)
    add_segment(tmp_path, 2)
    add_segment(tmp_path, 3)
    assert source('count_unacknowledged "$1"', str(tmp_path)).stdout == "2\n"
    assert source('count_unacknowledged "$1"', str(tmp_path / "none")).stdout == "0\n"


def test_purge_refused_while_evidence_waits(tmp_path):
    add_segment(tmp_path, 1)
    out = source('check_purge_allowed "$1"; echo reached', str(tmp_path))
    assert out.returncode == 1 and "refusing to purge: 1 segment(s)" in out.stderr and "reached" not in out.stdout


def test_purge_refused_while_quarantine_holds_files(tmp_path):
    (tmp_path / "quarantine").mkdir()
    (tmp_path / "quarantine" / "x.age").write_bytes(b"?")
    out = source('check_purge_allowed "$1"', str(tmp_path))
    assert out.returncode == 1 and "1 file(s) are in quarantine" in out.stderr


def test_purge_allowed_when_everything_is_acknowledged(tmp_path):
    add_segment(tmp_path, 1, receipt=True)
    out = source('check_purge_allowed "$1"; echo reached', str(tmp_path))
    assert out.returncode == 0 and "reached" in out.stdout


# --- the config it writes ---------------------------------------------------------------------

@pytest.mark.parametrize("mode, backend", [("simulation", "synthetic"), ("pi", "auto")])
def test_rendered_config_is_valid(tmp_path, mode, backend):
    out_file = tmp_path / "agent.toml"
    script = f'SOURCE_DIR="{REPO}" MODE={mode} SITE=musterstadt RECIPIENTS_SRC=/x; render_config "$1" cam-0042'
    result = source(script, str(out_file))
    assert result.returncode == 0, result.stderr
    cfg = config_mod.load(out_file)
    assert (cfg.device.id, cfg.device.site, cfg.camera.backend) == ("cam-0042", "musterstadt", backend)
    assert cfg.evidence.recipients == ("/etc/bodycam/evidence.pub",)
    assert out_file.read_text().startswith("# Written by install.sh")


def test_default_device_id_is_a_valid_id():
    out = source("default_device_id")
    assert out.returncode == 0
    config_mod.loads(f'[device]\nid = "{out.stdout.strip()}"\n')


# --- directories it may take over -----------------------------------------------------------------

def test_never_takes_over_a_directory_other_software_owns(tmp_path):
    """audit_log = "/var/log/audit.jsonl" must not make /var/log the agent's (chown, later purge)."""
    out = source('guard_own_dir "$1"; echo reached', str(tmp_path))
    assert out.returncode == 1 and "belongs to" in out.stderr and "reached" not in out.stdout


def test_takes_its_own_and_new_directories(tmp_path):
    for path in ("/var/lib/bodycam/spool", "/etc/bodycam/keys", str(tmp_path / "new" / "spool")):
        out = source('guard_own_dir "$1"; echo reached', path)
        assert out.returncode == 0 and "reached" in out.stdout, path


def test_simulation_sets_the_ui_sections_when_the_example_has_them(tmp_path):
    import tomllib

    (tmp_path / "agent").mkdir()
    (tmp_path / "agent" / "agent.example.toml").write_text(
        '[device]\nid = "sim-0001"\n[camera]\nbackend = "auto"\n[display]\n# driver = "x" in a comment\n'
        'driver = "ssd1306"\n[controls]\npin_factory = "auto"\nbutton_pin = 17\n')
    out_file = tmp_path / "agent.toml"
    result = source(f'SOURCE_DIR="{tmp_path}" MODE=simulation SITE= RECIPIENTS_SRC=; render_config "$1" cam-7',
                    str(out_file))
    assert result.returncode == 0, result.stderr
    doc = tomllib.loads(out_file.read_text())
    assert doc["display"]["driver"] == "dummy" and doc["controls"]["pin_factory"] == "mock"
    assert doc["camera"]["backend"] == "synthetic" and doc["device"]["id"] == "cam-7"
    assert doc["controls"]["button_pin"] == 17


SUPPORTED_OS = ("bodycam installs on Raspberry Pi OS Bookworm (64-bit) on a Raspberry Pi 4 or 5, and for the "
                "simulation on 64-bit Debian 12 (amd64 or arm64).")


# --- the architectures it installs on (#11.23) --------------------------------------------------

def fake_dpkg(tmp_path: Path, architecture: str) -> dict[str, str]:
    """An environment whose dpkg says ``architecture`` (everything else goes to the real dpkg)."""
    shim = tmp_path / "bin"
    shim.mkdir()
    dpkg = shim / "dpkg"
    dpkg.write_text(f'#!/bin/sh\n[ "$1" = --print-architecture ] && {{ echo {architecture}; exit 0; }}\n'
                    f'exec {need_tool("dpkg", "dpkg")} "$@"\n')
    dpkg.chmod(0o755)
    return {**os.environ, "PATH": f"{shim}:{os.environ['PATH']}"}


@pytest.mark.parametrize("architecture", ["armhf", "armel", "i386"])
def test_refuses_a_32_bit_system_before_doing_anything(tmp_path, architecture):
    """numpy, pillow, cffi, pyrage and pygame have no 32-bit wheels: say so instead of a compiler error."""
    out = subprocess.run(["bash", str(INSTALL_SH), "--dry-run"], capture_output=True, text=True, timeout=60,
                         cwd="/", env=fake_dpkg(tmp_path, architecture))
    assert out.returncode == 1, out.stdout + out.stderr
    assert SUPPORTED_OS in out.stderr and f"({architecture})" in out.stderr, out.stderr
    assert out.stdout == ""  # refused before the plan


@pytest.mark.parametrize("architecture", ["arm64", "amd64"])
def test_installs_on_64_bit_systems(tmp_path, architecture):
    out = subprocess.run(["bash", str(INSTALL_SH), "--dry-run"], capture_output=True, text=True, timeout=60,
                         cwd="/", env=fake_dpkg(tmp_path, architecture))
    assert out.returncode == 0, out.stderr
    assert SUPPORTED_OS not in out.stderr


def test_install_md_names_the_supported_system():
    assert SUPPORTED_OS in " ".join((REPO / "docs" / "INSTALL.md").read_text().split())


def test_uninstall_is_never_refused_for_the_architecture(tmp_path):
    out = subprocess.run(["bash", str(INSTALL_SH), "--uninstall", "--dry-run"], capture_output=True, text=True,
                         timeout=60, cwd="/", env=fake_dpkg(tmp_path, "armhf"))
    assert out.returncode in (0, 1), out.stderr  # 1: this machine holds unacknowledged segments
    assert SUPPORTED_OS not in out.stderr


# --- recipients given on a later run (#11.20) -----------------------------------------------------

FIRST_RUN_WITHOUT_RECIPIENTS = (f'SOURCE_DIR="{REPO}" MODE=simulation SITE=musterstadt RECIPIENTS_SRC=; '
                                'render_config "$1" cam-0042')


@pytest.mark.parametrize("empty", ["recipients = []", "recipients = [\n]", "recipients = [  # none yet\n  ]", None])
def test_a_later_run_with_recipients_lists_them_in_the_kept_config(tmp_path, empty):
    """The config of a first run without --recipients (or one edited by hand) gets exactly the recipients key
    changed; every other line and comment stays, and the doctor no longer says the agent will not record."""
    from agent import doctor
    from agent.doctor.local import check_recipients
    from evidence.keys import generate_evidence_keys

    config = tmp_path / "agent.toml"
    assert source(FIRST_RUN_WITHOUT_RECIPIENTS, str(config)).returncode == 0
    template = config.read_text().replace("# Required before the agent records.", "# our own note: keep this")
    assert template.count("\nrecipients = []\n") == 1
    (tmp_path / "office").mkdir()
    pub = generate_evidence_keys(tmp_path / "office").recipient_path
    if empty is None:  # no key at all: it goes right below the section's header
        config.write_text(template.replace("\nrecipients = []\n", "\n"))
        expected = template.replace("\nrecipients = []\n", "\n").replace(
            "\n[evidence]\n", f'\n[evidence]\nrecipients = ["{pub}"]\n')
    else:
        config.write_text(template.replace("recipients = []", empty))
        expected = template.replace("recipients = []", f'recipients = ["{pub}"]')
    assert check_recipients(doctor.Context.load(str(config))).title.endswith("the agent will not record")

    out = source(f'SOURCE_DIR="{REPO}"; enable_recipients "$1" "$2"', str(config), str(pub))
    assert out.returncode == 0, out.stderr

    assert config.read_text() == expected
    assert config_mod.load(config).evidence.recipients == (str(pub),)
    check = check_recipients(doctor.Context.load(str(config)))
    assert check.level == doctor.Level.OK, check


def test_recipients_it_cannot_place_change_nothing(tmp_path):
    """A config whose [evidence] the edit cannot reach (here: a dotted key at the top) is left as it was."""
    config = tmp_path / "agent.toml"
    original = 'evidence.recipients = []\n[device]\nid = "cam-0042"\n'
    config.write_text(original)
    out = source(f'SOURCE_DIR="{REPO}"; enable_recipients "$1" /etc/bodycam/evidence.pub; echo reached', str(config))
    assert out.returncode == 1 and "reached" not in out.stdout
    assert "evidence.recipients" in out.stderr and "by hand" in out.stderr, out.stderr
    assert config.read_text() == original
