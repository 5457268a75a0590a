"""An installed review app has its pages, CSS/JS and German texts: every file of backoffice/web that is
not Python is named by the package data in pyproject.toml."""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WEB = REPO / "backoffice" / "web"


def test_every_template_static_file_and_translation_is_package_data():
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["backoffice.web"]
    data = [p.relative_to(WEB).as_posix() for p in WEB.rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc")]
    assert data and [f for f in data if not any(fnmatch(f, pattern) for pattern in patterns)] == []
