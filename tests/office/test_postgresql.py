"""The whole catalog suite once more on a real PostgreSQL server.

Django sets its database up once per process, so the PostgreSQL run is the same test files in a child
pytest with ``DATABASE_URL`` pointing at a server this test starts (and stops).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .pgserver import postgres_bin, postgresql_server

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


@pytest.mark.skipif(os.environ.get("DATABASE_URL") is not None, reason="already the run on DATABASE_URL")
@pytest.mark.skipif(postgres_bin() is None, reason="PostgreSQL is not installed (see .ci/dev)")
def test_the_catalog_suite_passes_on_postgresql(tmp_path):
    with postgresql_server() as url:
        env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(REPO),
               "BODYCAM_OFFICE_DATA": str(tmp_path)}
        result = subprocess.run([sys.executable, "-m", "pytest", str(HERE), "-q", "-p", "no:cacheprovider",
                                 "-p", "no:xdist", "-m", "not system", "-W", "error::RuntimeWarning"],
                                cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and " failed" not in result.stdout
    assert "postgresql" in result.stdout  # the child really used it (see test_dburl's backend line)
