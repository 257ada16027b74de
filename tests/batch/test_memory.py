"""Peak memory of a batch run does not grow with the export: measured on a subprocess (peak RSS)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.generate_export import generate

_RUN = """
import resource, sys
from cds.cli import main
sys.argv = ["cto-cds", "score", "--ndjson", sys.argv[1], "--out", sys.argv[2], "--today", "2026-12-01"]
try:
    main()
except SystemExit as exit:
    assert not exit.code, exit.code
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _peak_rss_kib(export: Path, out: Path) -> int:
    result = subprocess.run(
        [sys.executable, "-c", _RUN, str(export), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return int(result.stdout.split()[-1])


def test_peak_rss_is_independent_of_the_export_size(tmp_path: Path) -> None:
    # Same 32 CTO-PCI cases; the large export has ~30× the patients (and resources) of the small one.
    small, large = tmp_path / "small", tmp_path / "large"
    generate(850, small, filler=500)
    generate(850, large, filler=40_000)
    small_bytes = sum(p.stat().st_size for p in small.iterdir())
    large_bytes = sum(p.stat().st_size for p in large.iterdir())
    assert large_bytes > 8 * small_bytes
    rss_small = _peak_rss_kib(small, tmp_path / "small.ndjson")
    rss_large = _peak_rss_kib(large, tmp_path / "large.ndjson")
    assert (tmp_path / "small.ndjson").read_text() == (tmp_path / "large.ndjson").read_text()
    # The export grows by tens of MB; peak memory may differ only by allocator noise.
    growth_mib = (large_bytes - small_bytes) / 2**20
    assert growth_mib > 20
    assert rss_large - rss_small < 12 * 1024, (rss_small, rss_large, growth_mib)
