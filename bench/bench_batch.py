"""Batch scoring of a generated Bulk FHIR export: CTO-PCI orders per CPU-second, peak RSS.

Generates the export (bench/generate_export.py) into a temporary directory unless `--export DIR`
names one already generated, runs the installed `cto-cds score --ndjson … --out …` as a subprocess
and reads its resource usage (user and system CPU of the command and its worker processes, the peak
RSS of the largest of them). The rate is per CPU-second of user time, so it stays comparable on a
machine shared with other work, where wall time is not; the target of issue 9 is ≥ 1,000 orders per
second per core.

    .venv/bin/python bench/bench_batch.py 10000 [--jobs N] [--export /tmp/exp10k]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TODAY = "2026-12-01"


def _generate(patients: int, directory: Path) -> None:
    script = Path(__file__).with_name("generate_export.py")
    subprocess.run(
        [sys.executable, str(script), str(patients), str(directory)],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _command() -> str:
    return str(Path(sys.executable).with_name("cto-cds"))


def run(export: Path, out: Path, jobs: int) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [
            _command(),
            "score",
            "--ndjson",
            str(export),
            "--out",
            str(out),
            "--today",
            TODAY,
            "--jobs",
            str(jobs),
        ],
        check=True,
        stderr=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    with out.open("rb") as handle:
        orders = sum(1 for _ in handle)
    user = after.ru_utime - before.ru_utime
    return {
        "orders": orders,
        "user": user,
        "system": after.ru_stime - before.ru_stime,
        "wall": wall,
        "rate": orders / user,
        "rss_mib": after.ru_maxrss / 1024,  # Linux: KiB; the largest single process
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("patients", type=int, nargs="?", default=10_000)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--export", type=Path, help="an export generated before (else a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        export = args.export or Path(tmp) / "export"
        if not export.is_dir() or not any(export.iterdir()):
            _generate(args.patients, export)
        size = sum(p.stat().st_size for p in export.iterdir()) / 2**20
        figures = run(export, Path(tmp) / "out.ndjson", args.jobs)
    print(
        f"{args.patients:,} patients ({size:.0f} MiB), --jobs {args.jobs}: "
        f"{figures['orders']:,.0f} CTO-PCI orders, user CPU {figures['user']:.1f} s "
        f"(system {figures['system']:.1f} s, wall {figures['wall']:.1f} s) → "
        f"{figures['rate']:,.0f} orders per CPU-second; peak RSS {figures['rss_mib']:.0f} MiB"
    )


if __name__ == "__main__":
    main()
