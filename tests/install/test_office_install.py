"""install-office.sh for real, in a throw-away Debian 12 root: users, directories, keys, the catalog and the
first admin, the units; a second run changes nothing (its output and every file); the receiver and the
custodian are enabled once a device is enrolled and the receiver has its broker's certificates; the
installed system booted (systemd-nspawn) runs the custodian, the review app, the receiver and the retention
job, and the office audit log they write verifies; uninstall and purge keep the store and the audit log.

Needs root, debootstrap, unshare and chroot (systemd-nspawn for the boot), and reaches Debian's mirror and
PyPI. The root comes from the cache tests/install/debian.py keeps for the device's tests (no debootstrap of
its own); about 1 min here, mostly apt and pip (`install tests` in the summary lists each step's time).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

from evidence.keys import generate_device_key, generate_evidence_keys

from .conftest import SUMMARY, UNITS, need_tool
from .debian import copy_checkout, in_root, make_root, need_root_tools

pytestmark = [pytest.mark.system, pytest.mark.timeout(1500)]  # downloads: Debian packages, the office's wheels

TIMINGS: dict[str, float] = {}
CATALOG = "/var/lib/bodycam-office/catalog-env.sqlite3"
OFFICE_ENV = f"""# the catalog (PostgreSQL on the city's server; here SQLite, named explicitly)
DATABASE_URL=sqlite:///{CATALOG}
BODYCAM_REVIEW_HOSTS="sichtung.stadt.example,127.0.0.1"
"""
ADMIN, PASSWORD = "ada", "Sichtung-Admin-2025!"
OFFICE_UNITS = ("bodycam-receiver.service", "bodycam-office-retention.service", "bodycam-office-retention.timer",
                "bodycam-custodian.service", "bodycam-review.service")
#: What install-office.sh owns; a run that changes nothing leaves every file here as it was.
SNAPSHOT_PATHS = ("etc/bodycam", "var/lib/bodycam-office", "srv/bodycam", "etc/systemd/system", "opt/bodycam/docs",
                  "opt/bodycam/.installed-source", "usr/local/bin", "etc/passwd", "etc/group", "etc/shadow")


def install(root: Path, *args: str, password: str = PASSWORD) -> subprocess.CompletedProcess:
    """install-office.sh in the root, with ``password`` on stdin (read only when it creates the admin)."""
    start = time.monotonic()
    out = in_root(root, "sh", "-c", 'printf "%s\\n" "$0" | /src/install-office.sh "$@"', password, *args)
    runs = sum(name.startswith("run ") for name in TIMINGS)
    TIMINGS[f"run {runs + 1}: install-office.sh {' '.join(args)}"[:70]] = time.monotonic() - start
    return out


def context(out: subprocess.CompletedProcess) -> str:
    return out.stdout[-5000:] + out.stderr[-3000:]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    need_root_tools()
    path = tmp_path_factory.mktemp("office-debian") / "root"
    make_root(path, TIMINGS)
    copy_checkout(path / "src")
    generate_evidence_keys(path / "tmp")  # /tmp/evidence.key (0600) and evidence.pub, as from the safe
    # IT's settings, written before the first run (too open: the installer makes it 0600). The catalog's
    # DATABASE_URL names another file than the default, so the tests see that every step and unit uses it.
    (path / "etc/bodycam").mkdir()
    (path / "etc/bodycam/office.env").write_text(OFFICE_ENV)
    yield path
    SUMMARY.append("office install test timings: " + ", ".join(f"{k.strip()}: {v:.0f} s" for k, v in TIMINGS.items()))
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def evidence_line(root) -> str:
    return next(line for line in (root / "tmp/evidence.key").read_text().splitlines()
                if line.startswith("AGE-SECRET-KEY-1"))


@pytest.fixture(scope="module")
def first_run(root):
    return install(root, "--evidence-key", "/tmp/evidence.key", "--admin", ADMIN)


def snapshot(root: Path) -> dict[str, tuple]:
    """Every file and directory install-office.sh owns: type, mode, owner, size, mtime, content hash."""
    found = {}
    for top in SNAPSHOT_PATHS:
        base = root / top
        paths = [base, *base.rglob("*")] if base.is_dir() and not base.is_symlink() else [base]
        for path in paths:
            st = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if stat.S_ISREG(st.st_mode) else os.readlink(
                path) if stat.S_ISLNK(st.st_mode) else ""
            # SQLite in WAL mode creates and removes <catalog>-wal/-shm beside the database whenever a command
            # opens it (the second run's migrate too), so that directory's mtime moves by design
            mtime = None if path == root / CATALOG.lstrip("/").rsplit("/", 1)[0] else st.st_mtime_ns
            found[str(path.relative_to(root))] = (st.st_mode, st.st_uid, st.st_gid, st.st_size, mtime, digest)
    return found


@pytest.fixture(scope="module")
def second_run(root, first_run):
    """The same command again, with a snapshot of every file it owns before and after."""
    before = snapshot(root)
    out = install(root, "--evidence-key", "/tmp/evidence.key", "--admin", ADMIN)
    return out, before, snapshot(root)


def ids(root: Path, file: str) -> dict[str, list[str]]:
    return {line.split(":")[0]: line.split(":") for line in (root / "etc" / file).read_text().splitlines()}


def mode_owner(root: Path, path: str) -> tuple[int, str, str]:
    st = (root / path.lstrip("/")).stat()
    users = {int(v[2]): k for k, v in ids(root, "passwd").items()}
    groups = {int(v[2]): k for k, v in ids(root, "group").items()}
    return stat.S_IMODE(st.st_mode), users[st.st_uid], groups[st.st_gid]


def test_first_install(first_run):
    assert first_run.returncode == 0, context(first_run)
    out = first_run.stdout
    for step in ("[done]  install the bodycam software from /src into /opt/bodycam/venv",
                 "[done]  install the evidence key as /etc/bodycam/custodian/evidence.key",
                 "[done]  create the office audit signing key /var/lib/bodycam-office/keys/office.key",
                 "[done]  create the receipt signing key /etc/bodycam/receipt.key",
                 "[done]  create the review app's session secret /etc/bodycam/review-secret",
                 "[done]  migrate the catalog database", f"[done]  create the first admin {ADMIN}",
                 "[done]  set /etc/bodycam/office.env to 600 root:root",
                 "[done]  enable bodycam-review.service at boot", "[done]  enable bodycam-office-retention.timer"):
        assert step in out, context(first_run)
    # No device is enrolled yet: the custodian and the receiver would only restart every few seconds.
    assert "[note]  bodycam-custodian.service not enabled yet: no enrolled device public keys found" in out
    assert "[note]  bodycam-receiver.service not enabled yet: no enrolled device public keys found" in out
    assert "The custodian decrypts recordings sealed to: age1" in out and "Behind nginx with TLS" in out


def test_second_run_changes_nothing(second_run):
    out, before, after = second_run
    assert out.returncode == 0, context(out)
    assert "Nothing to change: everything is already in place." in out.stdout, context(out)
    assert "[done]" not in out.stdout and "[would]" not in out.stdout
    assert f"[ok]    admin {ADMIN} exists (password unchanged)" in out.stdout
    changed = {path: (before.get(path), after.get(path)) for path in before.keys() | after.keys()
               if before.get(path) != after.get(path)}
    assert not changed, changed
    assert len(before) > 40  # the snapshot saw the installation


def test_users_and_groups(root, first_run):
    passwd, group = ids(root, "passwd"), ids(root, "group")
    receiver_gid, custodian_gid = group["bodycam-receiver"][2], group["bodycam-custodian"][2]
    assert passwd["bodycam-receiver"][3:] == [receiver_gid, "bodycam back office - receiver and retention",
                                              "/srv/bodycam", "/usr/sbin/nologin"]
    assert passwd["bodycam-custodian"][3] == custodian_gid and passwd["bodycam-custodian"][6] == "/usr/sbin/nologin"
    # The review app: the receiver's group (catalog, audit log, store) and the custodian's (its socket).
    assert passwd["bodycam-review"][3] == receiver_gid and passwd["bodycam-review"][6] == "/usr/sbin/nologin"
    assert group["bodycam-custodian"][3].split(",") == ["bodycam-review"]
    for user in ("bodycam-receiver", "bodycam-custodian", "bodycam-review"):
        assert int(passwd[user][2]) < 1000, user  # system users


@pytest.mark.parametrize("path, expected", [
    ("/etc/bodycam", (0o750, "root", "bodycam-receiver")),
    ("/etc/bodycam/receiver.toml", (0o640, "root", "bodycam-receiver")),
    ("/etc/bodycam/receipt.key", (0o600, "bodycam-receiver", "bodycam-receiver")),
    ("/etc/bodycam/receipt.pub", (0o644, "root", "root")),
    ("/etc/bodycam/review-secret", (0o600, "root", "root")),
    ("/etc/bodycam/devices", (0o750, "root", "bodycam-receiver")),
    ("/etc/bodycam/mqtt", (0o750, "root", "bodycam-receiver")),
    ("/etc/bodycam/custodian", (0o700, "root", "root")),
    ("/etc/bodycam/custodian/evidence.key", (0o600, "root", "root")),
    ("/srv/bodycam", (0o750, "bodycam-receiver", "bodycam-receiver")),
    ("/srv/bodycam/store", (0o770, "bodycam-receiver", "bodycam-receiver")),
    ("/srv/bodycam/incoming", (0o750, "bodycam-receiver", "bodycam-receiver")),
    ("/var/lib/bodycam-office", (0o770, "bodycam-receiver", "bodycam-receiver")),
    (CATALOG, (0o660, "bodycam-receiver", "bodycam-receiver")),
    ("/etc/bodycam/office.env", (0o600, "root", "root")),
    ("/var/lib/bodycam-office/audit", (0o770, "bodycam-receiver", "bodycam-receiver")),
    ("/var/lib/bodycam-office/audit/office-audit.jsonl", (0o660, "bodycam-receiver", "bodycam-receiver")),
    ("/var/lib/bodycam-office/audit/office-audit.jsonl.lock", (0o660, "bodycam-receiver", "bodycam-receiver")),
    ("/var/lib/bodycam-office/keys", (0o750, "bodycam-receiver", "bodycam-receiver")),
    ("/var/lib/bodycam-office/keys/office.key", (0o600, "bodycam-receiver", "bodycam-receiver")),
    ("/var/lib/bodycam-office/keys/office.pub", (0o644, "bodycam-receiver", "bodycam-receiver")),
])
def test_permissions(root, first_run, path, expected):
    assert mode_owner(root, path) == expected


def test_the_evidence_key_is_installed_in_one_place_only(root, first_run, evidence_line):
    """It is the given file, byte for byte, and no other file in the root holds it (the source aside)."""
    assert (root / "etc/bodycam/custodian/evidence.key").read_bytes() == (root / "tmp/evidence.key").read_bytes()
    out = subprocess.run(["grep", "-rlsF", "--exclude-dir=proc", "--exclude-dir=sys", "--exclude-dir=dev",
                          evidence_line, str(root)], capture_output=True, text=True, timeout=300)
    holders = sorted(str(Path(p).relative_to(root)) for p in out.stdout.split())
    assert holders == ["etc/bodycam/custodian/evidence.key", "tmp/evidence.key"], holders


def test_another_evidence_key_is_refused_and_nothing_changes(root, second_run, tmp_path):
    other = generate_evidence_keys(tmp_path)
    shutil.copy(other.identity_path, root / "tmp/other.key")
    before = snapshot(root)
    out = install(root, "--evidence-key", "/tmp/other.key")
    assert out.returncode == 1 and "a different evidence key is installed" in out.stderr, context(out)
    out = install(root, "--evidence-key", "/tmp/evidence.pub")
    assert out.returncode == 2 and "give the private evidence.key, not evidence.pub" in out.stderr, context(out)
    assert snapshot(root) == before
    (root / "tmp/other.key").unlink()


def test_catalog_admin_and_units(root, first_run):
    assert not (root / "var/lib/bodycam-office/catalog.sqlite3").exists()  # DATABASE_URL from office.env
    check = in_root(root, "runuser", "-u", "bodycam-receiver", "--", "env", f"DATABASE_URL=sqlite:///{CATALOG}",
                    "/opt/bodycam/venv/bin/python", "-c",
                    "import sys; from backoffice.office.bootstrap import setup_django; setup_django()\n"
                    "from django.contrib.auth import get_user_model\n"
                    "u = get_user_model().objects.get(username=sys.argv[1])\n"
                    "print(u.check_password(sys.argv[2]), sorted(g.name for g in u.groups.all()))", ADMIN, PASSWORD)
    assert check.stdout.strip() == "True ['admin']", check.stdout + check.stderr
    for unit in OFFICE_UNITS:
        assert (root / "etc/systemd/system" / unit).read_text() == (UNITS / unit).read_text()
    wants = root / "etc/systemd/system"
    assert (wants / "multi-user.target.wants/bodycam-review.service").is_symlink()
    assert (wants / "timers.target.wants/bodycam-office-retention.timer").is_symlink()
    dropin = (wants / "bodycam-receiver.service.d/catalog.conf").read_text()
    assert "Environment=BODYCAM_OFFICE_DATA=/var/lib/bodycam-office" in dropin
    assert "ReadWritePaths=/var/lib/bodycam-office" in dropin
    assert "\ncatalog = true\n" in (root / "etc/bodycam/receiver.toml").read_text()


@pytest.fixture(scope="module")
def enrolled(root, second_run, pki, tmp_path_factory):
    """A device enrolled, and the receiver's broker (127.0.0.1, nothing listening) with its certificates:
    the next run enables the custodian and the receiver; the one after changes nothing."""
    keys = tmp_path_factory.mktemp("device")
    generate_device_key(keys, device_id="cam-0042")
    etc = root / "etc/bodycam"
    shutil.copy(keys / "device.pub", etc / "devices/cam-0042.pub")
    for src, name in ((pki.ca, "ca.crt"), (pki.client_cert, "receiver-1.crt"), (pki.client_key, "receiver-1.key")):
        shutil.copy(src, etc / "mqtt" / name)
    config = etc / "receiver.toml"
    config.write_text(config.read_text().replace('host = "mqtt.example.city"', 'host = "127.0.0.1"'))
    prepared = in_root(root, "sh", "-c", "chmod 644 /etc/bodycam/devices/cam-0042.pub /etc/bodycam/mqtt/*.crt && "
                       "chgrp bodycam-receiver /etc/bodycam/mqtt/receiver-1.key && chmod 640 /etc/bodycam/mqtt/receiver-1.key")
    assert prepared.returncode == 0, prepared.stderr
    return install(root), install(root)


def test_enrolment_lets_the_custodian_and_the_receiver_start(enrolled):
    out, again = enrolled
    assert out.returncode == 0, context(out)
    assert "[done]  enable bodycam-custodian.service at boot" in out.stdout, context(out)
    assert "[done]  enable bodycam-receiver.service at boot" in out.stdout, context(out)
    assert again.returncode == 0 and "Nothing to change: everything is already in place." in again.stdout, context(again)


BOOT_RUNNER = f"""[Unit]
Description=bodycam back-office boot check (tests/install/office_boot_check.py), then power off
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/opt/bodycam/venv/bin/python /usr/local/lib/office-boot-check.py {ADMIN} {PASSWORD}
[Install]
WantedBy=multi-user.target
"""


@pytest.fixture(scope="module")
def booted(root, enrolled):
    """Boot the installed back office once (systemd-nspawn) and run office_boot_check.py in it; its results."""
    nspawn = need_tool("systemd-nspawn", "systemd-container")
    placed = {root / "usr/local/lib/office-boot-check.py": (Path(__file__).parent / "office_boot_check.py").read_text(),
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
        result = root / "boot-check/result.json"
        assert result.exists(), run.stdout[-3000:] + run.stderr[-3000:]
        yield json.loads(result.read_text())
    finally:
        for path in (*placed, wants):
            path.unlink(missing_ok=True)
        shutil.rmtree(root / "boot-check", ignore_errors=True)


def show(results: dict, *units: str) -> str:
    return json.dumps({k: v for k, v in results.items() if k != "journal"}, indent=1)[-4000:] + "".join(
        f"\n--- {u}\n{results['journal'].get(u, '')}" for u in units)


def test_the_services_run_after_boot(booted):
    for unit, state in booted["units"].items():
        assert state["ActiveState"] == "active" and state["UnitFileState"] == "enabled", show(booted, unit)


def test_the_custodians_socket_is_for_its_group_only(booted):
    assert booted["socket"] == {"mode": "0o660", "user": "bodycam-custodian", "group": "bodycam-custodian",
                                "dir": {"mode": "0o750", "user": "bodycam-custodian", "group": "bodycam-custodian"}}, \
        show(booted, "bodycam-custodian.service")
    access = booted["socket_access"]
    assert access["bodycam-review"] == {"rc": 0, "out": "connected\n"}, access
    assert access["review-unit-sandbox"] == {"rc": 0, "out": "connected\n"}, access  # PrivateUsers=yes keeps it
    assert access["bodycam-receiver"]["rc"] == 1 and "PermissionError" in access["bodycam-receiver"]["out"], access


def test_the_evidence_key_reaches_the_custodian_as_a_credential_only(booted):
    key = booted["evidence_key"]
    assert "error" not in key, key
    assert key["file"] == {"mode": "0o600", "user": "root", "group": "root"}
    assert key["dir"] == {"mode": "0o700", "user": "root", "group": "root"}
    assert key["custodian_credentials"] == ["evidence.key", "office.key"] and key["credential_matches"]
    assert key["review_credentials"] == ["office.key", "review-secret"]
    for user, read in key["read_as"].items():
        assert read["rc"] == 1 and "PermissionError" in read["out"], (user, read)


def test_the_review_app_answers_on_loopback_and_signs_in_the_admin(booted):
    review = booted["review"]
    assert review.get("login_status") == 200 and review["login_title"].startswith("Anmelden"), \
        show(booted, "bodycam-review.service")
    assert "frame-ancestors 'none'" in review["csp"] and review["cookie_secure"]  # BODYCAM_REVIEW_BEHIND_TLS=1
    assert (review["signin_status"], review["signin_location"], review["session_cookie"]) == (302, "/", True), review
    assert review["other_host_status"] == 400  # BODYCAM_REVIEW_HOSTS from office.env
    assert "[ERROR]" not in booted["journal"]["bodycam-review.service"], show(booted, "bodycam-review.service")


def test_the_office_audit_log_verifies_with_every_services_lines(booted):
    """The review app (login), the custodian (a refused request) and the retention job each appended to
    the one shared log, as their own users; `bodycam-office audit verify` checks the chain and signatures."""
    assert booted["refused"] == {"rc": 0, "out": "refused malformed\n"}, show(booted, "bodycam-custodian.service")
    assert booted["retention"]["rc"] == 0 and booted["retention"]["Result"] == "success", \
        show(booted, "bodycam-office-retention.service")
    audit = booted["audit"]
    assert "error" not in audit, audit
    assert {"login", "decryption_refused", "retention_run"} <= set(audit["events"]), audit["events"]
    # the custodian names the process that asked (the review app's user), not a user-namespace "nobody"
    peers = audit["refusal_peers"]
    assert peers and all(p.startswith(f"uid={audit['review_uid']} ") for p in peers), audit
    assert audit["verify"]["rc"] == 0 and ": OK, " in audit["verify"]["out"], audit["verify"]
    for name in ("log", "lock"):
        assert audit[name] == {"mode": "0o660", "user": "bodycam-receiver", "group": "bodycam-receiver"}, audit


def test_uninstall_and_purge_keep_the_store_and_the_audit_log(root, booted):
    stored = root / "srv/bodycam/store/musterstadt/cam-0042/20250615-1200/cam-0042-0000000001.age"
    stored.parent.mkdir(parents=True)
    stored.write_bytes(b"sealed")
    kept = {p: (root / p).read_bytes() for p in (
        "var/lib/bodycam-office/audit/office-audit.jsonl", CATALOG.lstrip("/"),
        "var/lib/bodycam-office/keys/office.pub", "etc/bodycam/receipt.pub", "etc/bodycam/devices/cam-0042.pub",
        str(stored.relative_to(root)))}

    out = install(root, "--uninstall")
    assert out.returncode == 0, context(out)
    for gone in ("opt/bodycam", "usr/local/bin/bodycam-office", *(f"etc/systemd/system/{u}" for u in OFFICE_UNITS),
                 "etc/systemd/system/bodycam-receiver.service.d"):
        assert not os.path.lexists(root / gone), gone
    assert not list((root / "etc/systemd/system").rglob("bodycam-*"))  # no enablement links left behind
    assert (root / "etc/bodycam/custodian/evidence.key").exists() and (root / "etc/bodycam/review-secret").exists()

    out = install(root, "--uninstall", "--purge")
    assert out.returncode == 0, context(out)
    for gone in ("etc/bodycam/custodian", "etc/bodycam/review-secret", "etc/bodycam/receipt.key",
                 "var/lib/bodycam-office/keys/office.key", "etc/bodycam/mqtt", "etc/bodycam/receiver.toml"):
        assert not (root / gone).exists(), gone
    assert {p: (root / p).read_bytes() for p in kept} == kept
    users = ids(root, "passwd")
    assert "bodycam-review" not in users and "bodycam-custodian" not in users and "bodycam-receiver" in users
    assert mode_owner(root, "/srv/bodycam/store")[1] == "bodycam-receiver"
