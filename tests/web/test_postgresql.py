"""The review app's tests once more on a real PostgreSQL server (as tests/office/test_postgresql.py does
for the catalog): a child pytest with ``DATABASE_URL`` pointing at a server this test starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.office.pgserver import postgres_bin, postgresql_server

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


@pytest.mark.system
@pytest.mark.skipif(os.environ.get("DATABASE_URL") is not None, reason="already the run on DATABASE_URL")
@pytest.mark.skipif(postgres_bin() is None, reason="PostgreSQL is not installed (see .ci/dev)")
def test_the_review_app_suite_passes_on_postgresql(tmp_path):
    with postgresql_server() as url:
        env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(REPO), "BODYCAM_OFFICE_DATA": str(tmp_path)}
        result = subprocess.run([sys.executable, "-m", "pytest", str(HERE), "-q", "-p", "no:cacheprovider",
                                 "-p", "no:xdist", "-m", "not system", "-W", "error::RuntimeWarning"],
                                cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and " failed" not in result.stdout
