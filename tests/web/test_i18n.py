"""German by default (whatever the browser asks for), English when chosen; every text translated, and
the committed .mo matches the .po."""

from __future__ import annotations

import gettext
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WEB = REPO / "backoffice" / "web"
PO = WEB / "locale" / "de" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")


def test_german_even_when_the_browser_asks_for_english(review):
    from django.test import Client

    page = Client().get("/login/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").content.decode()
    assert '<html lang="de">' in page and "Benutzername" in page and ">Anmelden</button>" in page


def test_english_once_chosen_and_back(review):
    from django.test import Client

    client = Client()
    response = client.post("/language/", {"language": "en", "next": "/login/"})
    assert response.status_code == 302 and response["Location"] == "/login/"
    page = client.get("/login/").content.decode()
    assert '<html lang="en">' in page and "User name" in page and ">Sign in</button>" in page
    client.post("/language/", {"language": "de", "next": "/login/"})
    assert "Benutzername" in client.get("/login/").content.decode()


def test_the_language_switch_names_each_language_in_itself(review):
    from django.test import Client

    page = Client().get("/login/").content.decode()
    assert 'lang="de" aria-pressed="true" class="current">Deutsch</button>' in page
    assert 'lang="en">English</button>' in page


def _gettext_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (apt-get install gettext)")
    return path


def test_every_text_has_its_german_translation():
    for flag in ("--untranslated", "--only-fuzzy"):
        out = subprocess.run([_gettext_tool("msgattrib"), flag, "--no-wrap", str(PO)], capture_output=True, text=True,
                             check=True, timeout=60).stdout
        assert [line for line in out.splitlines() if line.startswith("msgid ") and line != 'msgid ""'] == [], flag


def test_the_committed_mo_is_compiled_from_the_po(tmp_path):
    msgfmt = _gettext_tool("msgfmt")
    fresh = tmp_path / "django.mo"
    subprocess.run([msgfmt, "--check", "-o", str(fresh), str(PO)], check=True, timeout=60)
    with MO.open("rb") as committed, fresh.open("rb") as compiled:
        assert gettext.GNUTranslations(committed)._catalog == gettext.GNUTranslations(compiled)._catalog


def test_no_text_in_the_code_is_missing_from_the_po(tmp_path):
    """makemessages on a copy finds exactly the .po's texts (none added, none gone)."""
    _gettext_tool("xgettext")
    copy = tmp_path / "web"
    shutil.copytree(WEB, copy, ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(REPO), "DJANGO_SETTINGS_MODULE": "backoffice.office.settings",
           "BODYCAM_OFFICE_DATA": str(tmp_path / "data")}
    subprocess.run([sys.executable, "-m", "django", "makemessages", "-l", "de", "--no-location", "--no-obsolete"],
                   cwd=copy, env=env, check=True, capture_output=True, timeout=120)

    def msgids(path: Path) -> set[str]:
        out = subprocess.run([_gettext_tool("msgattrib"), "--no-wrap", str(path)], capture_output=True, text=True,
                             check=True, timeout=60).stdout
        return {line for line in out.splitlines() if line.startswith(("msgid ", "msgid_plural "))}

    fresh = copy / "locale" / "de" / "LC_MESSAGES" / "django.po"
    assert msgids(fresh) == msgids(PO)
