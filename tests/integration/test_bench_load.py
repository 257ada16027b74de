"""`bench/load.py`, the issue-10 benchmark, in miniature: every variant run against the real
service, floor and FHIR server, every target judged, the figures written as JSON. Only that it
runs and measures is checked here, never a speed (docs/performance.md has the figures)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
TARGETS = {
    "(a) ≥ 0.5× floor",
    "(a) p99 ≤ 30 ms at 100 req/s",
    "(b) ≥ 0.8× floor",
    "(c) ≤ 1.5× one query + 30 ms",
    "(d) cold start ≤ 2 s, database at head",
    "(d) cold start ≤ 2 s, new database",
    "(d) RSS ≤ 200 MB",
}


def test_a_short_run_measures_every_variant_without_errors(tmp_path: Path) -> None:
    figures = tmp_path / "load.json"
    done = subprocess.run(
        [sys.executable, "bench/load.py", "--no-healthchain", "--seconds", "0.5", "--rounds",
         "1", "--rss-calls", "0", "--fetch-calls", "1", "--json", str(figures)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(figures.read_text())
    assert set(result["throughput"]) == {"floor", "full", "non_cto"}
    assert all(rate > 0 for rate in result["throughput"].values())
    # Every call answered 200: a variant that errored would measure its error path instead.
    assert result["errors"] == {"floor": {}, "full": {}, "non_cto": {}}
    assert all(not errors for errors in result["fixed_rate_errors"].values())
    assert result["hook_c_ms"] > result["query_ms"] > 100  # the proxy's 100 ms per FHIR request
    assert set(result["cold_start_s"]) == {"new", "head"}
    assert all(0 < s < 60 for s in result["cold_start_s"].values())
    assert len(result["rss_mb"]) == 1
    assert set(result["targets"]) == TARGETS
    assert "| (a) order-select, full prefetch |" in done.stdout
    assert done.stdout.rstrip().splitlines()[-1].startswith("Targets: (a) ≥ 0.5× floor: ")
