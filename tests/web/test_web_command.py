"""``bodycam-office web`` serves the review app under gunicorn on 127.0.0.1 and stops cleanly on SIGTERM;
it refuses to start (one sentence, exit 2) without a session secret, a migrated catalog or the office key;
``bodycam-office user --password`` sets an argon2 password the validators accept."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from backoffice.localbroker import free_port
from evidence.keys import generate_office_key
from tests.support import wait_for

REPO = Path(__file__).resolve().parents[2]


def _env(data: Path, **extra) -> dict:
    """The command's own SQLite catalog in ``data`` (even in the PostgreSQL run: it must not touch the
    database the other tests use)."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return {**env, "PYTHONPATH": str(REPO), "BODYCAM_OFFICE_DATA": str(data),
            "BODYCAM_OFFICE_SECRET_KEY": "web-command-test-" + "z" * 40, **extra}


def _office(data: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "backoffice.cli", *args], capture_output=True, text=True,
                          timeout=120, env=env or _env(data), cwd=data)


@pytest.fixture(scope="module")
def migrated(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("office")
    assert _office(data, "migrate").returncode == 0
    (data / "keys").mkdir()
    generate_office_key(data / "keys")
    return data


@pytest.fixture
def data(migrated, tmp_path) -> Path:
    """A migrated data directory with its office key (a copy per test)."""
    return Path(shutil.copytree(migrated, tmp_path / "office"))


def _get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def test_serves_the_review_app_and_stops_on_sigterm(data):
    port = free_port()
    home = data / "home"  # gunicorn would put its management socket (gunicornc) here: it must not open one
    home.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "backoffice.cli", "web", "--bind", f"127.0.0.1:{port}",
                             "--workers", "1", "--threads", "2"], env=_env(data, HOME=str(home), XDG_RUNTIME_DIR=""),
                            cwd=data,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        def up():
            try:
                return _get(f"http://127.0.0.1:{port}/login/")[0] == 200
            except OSError:
                return False
        assert wait_for(up, timeout=60), "the review app did not answer"
        status, headers, body = _get(f"http://127.0.0.1:{port}/login/")
        assert "Anmelden" in body and "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert _get(f"http://127.0.0.1:{port}/static/web/app.css")[0] == 200
        status, _, body = _get(f"http://127.0.0.1:{port}/incidents/")
        assert status == 200 and "Anmelden" in body  # redirected to the login page
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = proc.stdout.read()
    assert "Booting worker" in log and "Traceback" not in log
    assert not list(home.iterdir()) and "[ERROR]" not in log, log


@pytest.mark.parametrize("problem, message", [
    ("secret", "the review app needs a secret to sign its sessions"),
    ("migrate", "needs 1 migration(s): run 'bodycam-office migrate' first"),
    ("key", "office.key"),
])
def test_refuses_to_start_with_a_sentence(data, problem, message):
    env = _env(data)
    if problem == "secret":
        env["BODYCAM_OFFICE_SECRET_KEY"] = ""
    elif problem == "migrate":
        code = ("import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
                "c.execute(\"DELETE FROM django_migrations WHERE app='web'\"); c.commit()")
        subprocess.run([sys.executable, "-c", code, str(data / "catalog.sqlite3")], check=True)
    else:
        (data / "keys" / "office.key").unlink()
    out = _office(data, "web", "--bind", f"127.0.0.1:{free_port()}", env=env)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_user_password_is_validated_and_hashed_with_argon2(db, office_settings, monkeypatch, capsys):
    from django.contrib.auth.models import User

    from backoffice.cli import main

    monkeypatch.setattr(sys, "stdin", io.StringIO("123456\n"))
    assert main(["user", "rita", "--role", "reviewer", "--password"]) == 2
    assert "password refused" in capsys.readouterr().err
    assert not User.objects.filter(username="rita").exists()  # nothing half-made

    monkeypatch.setattr(sys, "stdin", io.StringIO("Sichtung-im-Rathaus-2025\n"))
    assert main(["user", "rita", "--role", "reviewer", "--password"]) == 0
    rita = User.objects.get(username="rita")
    assert rita.password.startswith("argon2$") and rita.check_password("Sichtung-im-Rathaus-2025")
    assert [g.name for g in rita.groups.all()] == ["reviewer"]


def test_a_disabled_person_can_no_longer_sign_in(review, office_settings, monkeypatch, capsys):
    from django.test import Client

    from backoffice.cli import main

    monkeypatch.setattr(sys, "stdin", io.StringIO("Sichtung-im-Rathaus-2025\n"))
    assert main(["user", "rita", "--role", "reviewer", "--password"]) == 0
    client = Client()
    client.post("/login/", {"username": "rita", "password": "Sichtung-im-Rathaus-2025"})
    assert client.get("/").status_code == 200
    assert main(["user", "rita", "--disable"]) == 0
    assert "rita: reviewer (disabled)" in capsys.readouterr().out
    assert client.get("/").status_code == 302  # the open session no longer counts
    client.post("/login/", {"username": "rita", "password": "Sichtung-im-Rathaus-2025"})
    assert client.get("/").status_code == 302
    assert main(["user", "rita"]) == 2 and "say what to do" in capsys.readouterr().err
