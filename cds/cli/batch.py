"""`cto-cds score --ndjson DIR | --csv FILE --out FILE.ndjson [--jobs N]`: score a whole registry.

The edge of `cds/batch/`: opens the files, shows a progress bar (rich, on stderr) with rate and ETA,
and prints a one-line summary. Bad records go to the errors file (default: OUT with `.errors.ndjson`)
and never stop the run; only unusable arguments exit 2.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from cds.batch import run
from cds.batch.spool import Spool
from cds.cli.errors import fail
from cds.errors import CdsError


@dataclass(frozen=True)
class BatchOptions:
    ndjson: Path | None
    csv: Path | None
    out: Path
    errors: Path | None
    jobs: int
    mappings: Path | None
    today: str | None


class _Rate(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("–/s" if speed is None else f"{speed:,.0f}/s")


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _Rate(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def _jobs(value: int) -> int:
    if value == 0:
        return os.cpu_count() or 1
    if value < 0:
        fail(f"--jobs: must be ≥ 0 (0 = all cores), got {value}")
    return value


def _today(value: str | None) -> str:
    if value is None:
        return date.today().isoformat()
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        fail(f"--today: must be a date YYYY-MM-DD, got {value!r}")


def _open(path: Path) -> IO[str]:
    try:
        return path.open("w", encoding="utf-8")
    except OSError as exc:
        fail(f"{path}: cannot write: {exc.strerror}")


def run_batch(options: BatchOptions) -> None:
    """Dispatch to the NDJSON or CSV run (exactly one is given)."""
    jobs = _jobs(options.jobs)
    errors_path = options.errors or options.out.with_name(options.out.name + ".errors.ndjson")
    console = Console(stderr=True)
    started = time.perf_counter()
    with _open(options.out) as out, _open(errors_path) as err:
        if options.ndjson is not None:
            units, scored, bad = _run_export(options, jobs, out, err, console)
            what = f"{scored:,} CTO-PCI orders of {units:,} patients"
        else:
            assert options.csv is not None
            units, scored, bad = _run_csv(options.csv, jobs, out, err, console)
            what = f"{scored:,} rows"
    elapsed = time.perf_counter() - started
    rate = scored / elapsed if elapsed > 0 else 0.0
    console.print(
        f"scored {what} in {elapsed:.1f} s ({rate:,.0f}/s, {jobs} job{'s' * (jobs > 1)}) → "
        f"{options.out}; {bad:,} errors → {errors_path}",
        highlight=False,
    )


def _drain(
    results: Iterable[run.ChunkResult],
    out: IO[str],
    err: IO[str],
    advance: Callable[[int], None],
) -> tuple[int, int, int]:
    units = scored = bad = 0
    for chunk in results:
        out.writelines(chunk.lines)
        err.writelines(chunk.errors)
        units += chunk.units
        scored += chunk.scored
        bad += len(chunk.errors)
        advance(chunk.units)
    return units, scored, bad


def _run_export(
    options: BatchOptions, jobs: int, out: IO[str], err: IO[str], console: Console
) -> tuple[int, int, int]:
    directory = options.ndjson
    assert directory is not None
    if not directory.is_dir():
        fail(f"--ndjson: {directory}: not a directory of NDJSON files")
    today = _today(options.today)
    try:
        from cds.mapping.tables import load_tables

        tables = load_tables(options.mappings)  # fail once here, not in every worker
    except CdsError as exc:
        fail(str(exc))
    spool_errors = 0

    def spool_error(where: str, reason: str) -> None:
        nonlocal spool_errors
        spool_errors += 1
        err.write(run._dump({"where": where, "reason": reason}))

    with tempfile.TemporaryDirectory(prefix="cto-cds-spool-") as tmp:
        spool_path = Path(tmp) / "spool.sqlite"
        spool = Spool(spool_path, create=True)
        with console.status("spooling the export …"):
            stored = spool.ingest(directory, spool_error)
        for ref in run.without_patient(spool, tables, "ServiceRequest"):
            spool_error(ref, "subject is not a Patient reference: the order is not scored")
        total = spool.count_order_patients()
        console.print(
            f"spooled {stored:,} resources; {total:,} patients with orders", highlight=False
        )
        patients = spool.iter_order_patients()
        with _progress(console) as progress:
            task = progress.add_task("patients", total=total)
            results = run.ordered_map(
                run.score_patient_chunk,
                run.chunks(patients),
                jobs,
                run.init_export_worker,
                (str(spool_path), str(options.mappings) if options.mappings else None, today),
            )
            units, scored, bad = _drain(results, out, err, lambda n: progress.advance(task, n))
        spool.close()
    return units, scored, bad + spool_errors


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return max(
            sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b"")) - 1, 0
        )


def _run_csv(
    path: Path, jobs: int, out: IO[str], err: IO[str], console: Console
) -> tuple[int, int, int]:
    if not path.is_file():
        fail(f"--csv: {path}: no such file")
    bad = 0

    def row_error(line: str) -> None:
        nonlocal bad
        bad += 1
        err.write(line)

    total = _count_lines(path)
    rows = run.read_csv_rows(path, row_error)
    try:
        with _progress(console) as progress:
            task = progress.add_task("rows", total=total)
            results = run.ordered_map(
                run.score_csv_chunk, run.chunks(rows), jobs, run.init_csv_worker, ()
            )
            units, scored, _ = _drain(results, out, err, lambda n: progress.advance(task, n))
    except CdsError as exc:
        fail(str(exc))
    return units, scored, bad


def batch_score(
    file: str | None,
    bundle: Path | None,
    fhir: str | None,
    ndjson: Path | None,
    csv: Path | None,
    out: Path | None,
    jobs: int,
    mappings: Path | None,
    today: str | None,
) -> None:
    """Check the batch options of `cto-cds score` and run (one line on stderr, exit 2, if wrong)."""
    given = [n for n, v in (("FILE", file), ("--bundle", bundle), ("--fhir", fhir)) if v]
    if given:
        fail(f"score: --ndjson/--csv do not combine with {', '.join(given)}")
    if (ndjson is None) == (csv is None):
        fail("score: give exactly one of --ndjson DIR or --csv FILE with --out")
    if out is None:
        fail("score: --out FILE.ndjson is required with --ndjson or --csv")
    run_batch(BatchOptions(ndjson, csv, out, None, jobs, mappings, today))
