"""Several workers, one scrape: with PROMETHEUS_MULTIPROC_DIR, `/metrics` adds up every process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

COUNT = "from cds import metrics; metrics.HOOK_CALLS.labels('order-select', 'card').inc({n})"
SHOW = "from cds import metrics; print(metrics.exposition()[0].decode())"


def _python(code: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_multiprocess_mode_sums_the_workers(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    _python(COUNT.format(n=2), env)  # one worker
    _python(COUNT.format(n=3), env)  # another
    shown = _python(SHOW, env)  # the worker that answers the scrape
    assert 'cto_cds_hook_calls_total{hook="order-select",outcome="card"} 5.0' in shown


def test_without_it_each_process_counts_alone(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    shown = _python(COUNT.format(n=2) + "; " + SHOW.removeprefix("from cds import metrics; "), env)
    assert 'cto_cds_hook_calls_total{hook="order-select",outcome="card"} 2.0' in shown
