"""bench/bench_catalog.py still runs, end to end, on a tiny catalog on SQLite (the figures are not checked:
they belong to docs/BENCHMARKS.md; that every step did its work is)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent


@pytest.mark.skipif(os.environ.get("DATABASE_URL") is not None, reason="runs its own SQLite; once is enough")
@pytest.mark.timeout(300)
def test_the_catalog_benchmark_runs_on_a_tiny_year(tmp_path):
    out = tmp_path / "results.json"
    env = {**{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "BODYCAM_OFFICE_DATA")},
           "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, str(REPO / "bench" / "bench_catalog.py"), "--incidents", "600",
                           "--databases", "sqlite", "--draws", "10", "--expired", "20", "--ingest-segments", "2",
                           "--ingest-pairs", "1", "--ingest-mbit", "0.8", "--dir", str(tmp_path), "--json", str(out)],
                          env=env, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-3000:]
    [result] = json.loads(out.read_text())
    counts = result["counts"]
    assert result["database"] == "sqlite"
    assert counts["incidents"] == 600 and counts["segments"] > 3000 and counts["accesses"] > 600
    assert counts["active"] + counts["deleted"] == 600 and counts["tombstones"] == counts["deleted"] > 0
    assert all(q["n"] == 10 for q in result["queries"].values())
    retention = result["retention"]
    assert retention["deleted"] > 0 and retention["files_removed"] > retention["deleted"]
    assert retention["tombstones_new"] == retention["deleted"] and retention["incomplete_tombstones"] == 0
    assert result["recording"]["n"] == 20  # the CatalogRecorder on its own, 20 segments
    ingest = result["ingest"]
    assert ingest["cataloged"] == 2 and len(ingest["pair_ratios"]) == 1  # only the run with the catalog records
    assert "| **ratio with / without (median of the pairs, same run)** |" in done.stdout
    assert list(tmp_path.iterdir()) == [out]  # the databases, store and broker are gone
