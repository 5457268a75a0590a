"""Strict headers on every answer, CSRF refusals, cookie flags, settings from the environment (and a clear
sentence for a bad one), and templates without inline script or style (the CSP would block them)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import frames_30, record, signed_in  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "backoffice" / "web" / "templates"


def test_every_page_carries_the_strict_headers(review):
    from django.test import Client

    response = Client().get("/login/")
    csp = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    assert csp["default-src"] == "'self'" and csp["script-src"] == "'self'" and csp["style-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'" and csp["form-action"] == "'self'"
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "camera=()" in response["Permissions-Policy"]
    assert "no-store" in response["Cache-Control"]
    assert "Strict-Transport-Security" not in response  # only behind TLS (test_behind_tls_...)


def test_static_files_are_cacheable_and_headed_too(review):
    from django.test import Client

    response = Client().get("/static/web/app.js")
    assert response.status_code == 200 and response["Cache-Control"] == "public, max-age=3600"
    assert response["X-Content-Type-Options"] == "nosniff" and "Content-Security-Policy" in response
    escape = Client().get("/static/../views/static.py")  # refused as suspicious, never read
    assert escape.status_code == 400 and b"document_root" not in escape.content


def test_the_error_pages_do_not_leak_a_traceback(review):
    from django.test import Client

    response = Client().get("/no/such/page/")
    assert response.status_code == 404 and "Traceback" not in response.content.decode()


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(review, frames_30):
    from django.test import Client

    from backoffice.catalog.models import Hold

    incident = record(review, "inc-1", frames_30)
    user = review.user("rita", "reviewer")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    url = f"/incidents/{incident.pk}/hold/"
    response = client.post(url, {"case_reference": "AZ 1", "reason": "x"})
    assert response.status_code == 403 and 'id="csrf-failure"' in response.content.decode()
    assert not Hold.objects.exists()

    page = client.get(f"/incidents/{incident.pk}/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(url, {"case_reference": "AZ 1", "reason": "x", "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and Hold.objects.count() == 1


def test_the_login_form_needs_its_csrf_token_too(review):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post("/login/", {"username": "a", "password": "b"})
    assert response.status_code == 403


def test_cookies_are_http_only_and_same_site_strict(review):
    client = signed_in(review.user("rita", "reviewer"))
    client.get("/")
    cookie = client.cookies["sessionid"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
    assert not cookie["secure"]  # plain HTTP on 127.0.0.1; behind TLS see below


def _settings_in_child(env: dict, expr: str) -> subprocess.CompletedProcess:
    code = f"import backoffice.office.settings as s; print({expr})"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO), **env}, cwd=REPO)


def test_behind_tls_cookies_are_secure_the_proxy_is_trusted_and_hsts_is_on():
    out = _settings_in_child({"BODYCAM_REVIEW_BEHIND_TLS": "1"},
                             "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_PROXY_SSL_HEADER, "
                             "s.SECURE_HSTS_SECONDS > 0")
    assert out.stdout.strip() == "True True ('HTTP_X_FORWARDED_PROTO', 'https') True", out.stderr


def test_djangos_deployment_check_passes_behind_tls(tmp_path):
    out = subprocess.run([sys.executable, "-m", "django", "check", "--deploy", "--fail-level", "WARNING"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(REPO), "DJANGO_SETTINGS_MODULE": "backoffice.office.settings",
                              "BODYCAM_OFFICE_DATA": str(tmp_path), "BODYCAM_REVIEW_BEHIND_TLS": "1",
                              "BODYCAM_OFFICE_SECRET_KEY": "deploy-check-" + "Qx7" * 20})
    assert out.returncode == 0 and "no issues" in out.stdout, out.stdout + out.stderr


def test_behind_tls_the_audit_names_the_address_the_proxy_saw(review):
    from django.test import RequestFactory, override_settings

    from backoffice.web.client import client_address

    request = RequestFactory().get("/", HTTP_X_FORWARDED_FOR="6.6.6.6, 10.0.0.7", REMOTE_ADDR="127.0.0.1")
    assert client_address(request) == "web 127.0.0.1"
    with override_settings(REVIEW_BEHIND_TLS=True):
        assert client_address(request) == "web 10.0.0.7"


@pytest.mark.parametrize("env, message", [
    ({"BODYCAM_REVIEW_IDLE_MINUTES": "half an hour"}, "BODYCAM_REVIEW_IDLE_MINUTES='half an hour' is not a whole"),
    ({"BODYCAM_REVIEW_LOCKOUT_FAILURES": "0"}, "BODYCAM_REVIEW_LOCKOUT_FAILURES=0 is out of range"),
    ({"BODYCAM_REVIEW_BEHIND_TLS": "maybe"}, "BODYCAM_REVIEW_BEHIND_TLS='maybe': use 1 or 0"),
    ({"BODYCAM_REVIEW_TIME_ZONE": "Mars/Olympus"}, "is not a time zone"),
    ({"BODYCAM_OFFICE_SECRET_KEY": "", "BODYCAM_OFFICE_SECRET_KEY_FILE": "/nonexistent/secret"}, "cannot be read"),
])
def test_a_bad_setting_stops_the_command_with_a_sentence(env, message, tmp_path):
    out = subprocess.run([sys.executable, "-m", "backoffice.cli", "migrate"], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "PYTHONPATH": str(REPO), "BODYCAM_OFFICE_DATA": str(tmp_path),
                                          **env}, cwd=tmp_path)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert list(tmp_path.iterdir()) == []  # nothing was created


def test_a_secret_key_file_is_read(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("from-a-file-" + "x" * 40 + "\n")
    out = _settings_in_child({"BODYCAM_OFFICE_SECRET_KEY": "", "BODYCAM_OFFICE_SECRET_KEY_FILE": str(secret)},
                             "s.SECRET_KEY")
    assert out.stdout.strip() == "from-a-file-" + "x" * 40, out.stderr


def test_templates_have_no_inline_script_style_or_handler():
    bad = []
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text()
        for pattern in (r"<script(?![^>]*\bsrc=)[^>]*>", r"<style\b", r"\sstyle=", r"\son[a-z]+=", r"javascript:"):
            bad += [f"{path.name}: {m.group(0)}" for m in re.finditer(pattern, text)]
    assert bad == []
