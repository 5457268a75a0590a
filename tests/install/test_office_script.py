"""install-office.sh without installing: shellcheck, arguments, the --dry-run plan, and its helpers (sourced:
the refusals about the evidence key, the reading of office.env). The real installation is
test_office_install.py (system)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from evidence.keys import generate_evidence_keys

from .conftest import REPO, need_tool

OFFICE_SH = REPO / "install-office.sh"
INSTALLED_PATHS = ("/opt/bodycam", "/etc/bodycam", "/srv/bodycam", "/var/lib/bodycam-office",
                   "/etc/systemd/system/bodycam-custodian.service", "/usr/local/bin/bodycam-office")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(OFFICE_SH), *args], capture_output=True, text=True, timeout=120, cwd="/")


def source(script: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``script`` in bash after sourcing install-office.sh (its functions and install.sh's, nothing run)."""
    return subprocess.run(["bash", "-c", f'source "{OFFICE_SH}"; {script}', "bash", *args],
                          capture_output=True, text=True, timeout=60)


def test_shellcheck_clean():
    """-x: it sources install.sh, whose functions and variables shellcheck then checks it against."""
    tool = need_tool("shellcheck", "shellcheck")
    out = subprocess.run([tool, "-x", "--severity=style", str(OFFICE_SH)], capture_output=True, text=True,
                         timeout=60, cwd="/")
    assert out.returncode == 0, out.stdout


def test_help_and_bad_arguments():
    out = run("--help")
    assert out.returncode == 0 and "--evidence-key FILE" in out.stdout
    out = run("--frobnicate")
    assert out.returncode == 2 and out.stderr.startswith("install-office.sh: unknown option '--frobnicate'")
    out = run("--dry-run", "--admin", "ada lovelace")
    assert out.returncode == 2 and "not a valid user name" in out.stderr


def test_without_the_evidence_key_it_refuses_with_a_sentence():
    out = source("EVIDENCE_SRC=; check_evidence_key_source; echo reached")
    assert out.returncode == 2 and "reached" not in out.stdout
    assert "the key custodian needs the municipality's evidence key: give it with --evidence-key FILE" in out.stderr
    assert "Nothing was changed" in out.stderr


def test_the_public_key_or_a_missing_file_is_refused(tmp_path):
    keys = generate_evidence_keys(tmp_path)
    out = source('EVIDENCE_SRC=$1; check_evidence_key_source; echo reached', str(keys.recipient_path))
    assert out.returncode == 2 and "give the private evidence.key, not evidence.pub" in out.stderr
    out = source('EVIDENCE_SRC=$1; check_evidence_key_source; echo reached', str(tmp_path / "missing.key"))
    assert out.returncode == 2 and "cannot read" in out.stderr
    out = source('EVIDENCE_SRC=$1; check_evidence_key_source; echo reached', str(keys.identity_path))
    assert out.returncode == 0 and out.stdout == "reached\n", out.stderr


def test_office_env_is_read_as_systemd_reads_it(tmp_path):
    env = tmp_path / "office.env"
    env.write_text("# the catalog on PostgreSQL\n\n  DATABASE_URL=postgresql://office:s3cret@db.stadt/bodycam\n"
                   "; a comment\nBODYCAM_REVIEW_HOSTS=\"sichtung.stadt.example\"\nBODYCAM_REVIEW_TIME_ZONE='Europe/Berlin'\n")
    out = source('load_office_env "$1"; printf "%s\\n" "${OFFICE_ENV[@]}"', str(env))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "BODYCAM_OFFICE_DATA=/var/lib/bodycam-office", "BODYCAM_OFFICE_STORE=/srv/bodycam/store",
        "BODYCAM_OFFICE_DEVICES=/etc/bodycam/devices", "DATABASE_URL=postgresql://office:s3cret@db.stadt/bodycam",
        "BODYCAM_REVIEW_HOSTS=sichtung.stadt.example", "BODYCAM_REVIEW_TIME_ZONE=Europe/Berlin"]


def test_a_bad_office_env_line_is_named_without_showing_it(tmp_path):
    env = tmp_path / "office.env"
    env.write_text("DATABASE_URL=postgresql://office:s3cret@db/bodycam\nexport PASSWORD s3cret\n")
    out = source('load_office_env "$1"; echo reached', str(env))
    assert out.returncode == 1 and "reached" not in out.stdout
    assert f"{env}, line 2: not NAME=VALUE" in out.stderr and "s3cret" not in out.stderr


def test_dry_run_prints_the_plan_and_changes_nothing(tmp_path):
    keys = generate_evidence_keys(tmp_path)
    before = {p: os.path.lexists(p) for p in INSTALLED_PATHS}
    out = run("--dry-run", "--evidence-key", str(keys.identity_path), "--admin", "ada")
    assert out.returncode == 0, out.stderr
    assert {p: os.path.lexists(p) for p in INSTALLED_PATHS} == before
    assert "Nothing was changed" in out.stdout or "Nothing to change" in out.stdout
    if any(before.values()):
        pytest.skip("the back office is installed on this machine: the plan of a fresh install cannot be shown")
    for step in ("[would] create system user bodycam-review (group bodycam-receiver, no login)",
                 "[would] add user bodycam-review to group bodycam-custodian",
                 "[would] install the bodycam software from",
                 "[would] directory /var/lib/bodycam-office/audit (770 bodycam-receiver:bodycam-receiver)",
                 "[would] create /var/lib/bodycam-office/audit/office-audit.jsonl (660",
                 "[would] install the evidence key as /etc/bodycam/custodian/evidence.key (0600 root",
                 "[would] create the review app's session secret /etc/bodycam/review-secret",
                 "[would] migrate the catalog database", "[would] create the first admin ada",
                 "[would] install unit /etc/systemd/system/bodycam-custodian.service",
                 "[would] enable bodycam-custodian.service at boot (if its check passes then)",
                 "[would] enable bodycam-review.service at boot\n"):
        assert step in out.stdout, out.stdout
    assert not Path(keys.identity_path).with_name("evidence.key.tmp").exists()


def test_the_device_installers_messages_keep_their_name():
    """install.sh's helpers now print the name of the script that uses them."""
    out = subprocess.run(["bash", "-c", f'source "{REPO / "install.sh"}"; die "it broke"'], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 1 and out.stderr == "install.sh: it broke\n"
    out = source('die "it broke"')
    assert out.returncode == 1 and out.stderr == "install-office.sh: it broke\n"
