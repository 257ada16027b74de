"""`map_record` alone, CPU time: the mapping's share of a batch order and of a hook call.

Records are assembled once, outside the timing: `batch` reads the first patients of a Bulk FHIR
export through the batch's own source (spool, shared operator histories, `labels=False`), `hook`
reads the full prefetch of bench/load_bodies.py through the hook's prefetch source (labels built).
Then only `map_record` is timed (process_time), so the noise of parsing, scoring and writing is out.

    .venv/bin/python bench/bench_mapping.py [--export DIR] [--patients 500] [--repeat 5]

(`--export` as generated for bench/bench_batch.py; else one of `--patients` is generated.)
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import date
from pathlib import Path

from bench.bench_batch import _generate
from bench.load_bodies import bodies
from cds.batch.run import _cto_orders
from cds.batch.source import OperatorCache, SpoolPatientSource
from cds.batch.spool import Spool
from cds.mapping.operator import OperatorHistories, history_planner
from cds.mapping.order import find_order
from cds.mapping.record_inputs import map_record
from cds.mapping.tables import MappingTables, load_tables
from cds.sources.prefetch import PrefetchSource
from cds.sources.record import PatientRecord, RecordRequest, read_record

TODAY = date(2026, 12, 1)


def _ignore(where: str, reason: str) -> None:
    """Lines the export cannot use: the batch writes them to its errors file; not timed here."""


async def batch_records(
    export: Path, patients: int, tables: MappingTables, spool_path: Path
) -> list[PatientRecord]:
    spool = Spool(spool_path, create=True)
    spool.ingest(export, _ignore)
    operators = OperatorCache(spool)
    planner = history_planner(tables, TODAY)
    records = []
    for n, patient in enumerate(spool.iter_order_patients()):
        if n == patients:
            break
        source = SpoolPatientSource(spool, spool.patient_rows(patient), operators)
        for order in _cto_orders(tables, source):
            request = RecordRequest(patient_id=patient, order=order)
            records.append(await read_record(source, request, None, planner))
    return records


async def hook_record(tables: MappingTables) -> PatientRecord:
    body = bodies("pt23", "http://x/fhir")["full"]
    entries = body["context"]["draftOrders"]["entry"]
    order = next(
        e["resource"] for e in entries if e["resource"]["resourceType"] == "ServiceRequest"
    )
    source = PrefetchSource(body["prefetch"])
    return await read_record(
        source,
        RecordRequest(patient_id="pt23", order=order),
        lambda rec: find_order(rec, tables)[0],
        history_planner(tables, TODAY),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", type=Path, help="an export generated before (else a temp dir)")
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--hook-calls", type=int, default=2000)
    args = parser.parse_args()
    tables = load_tables()
    with tempfile.TemporaryDirectory(prefix="bench-mapping-") as tmp:
        export = args.export or Path(tmp) / "export"
        if not export.is_dir():
            # The export starts with the cohort's ≈ 800 patients without an order: these come first.
            _generate(args.patients + 1000, export)
        records = asyncio.run(batch_records(export, args.patients, tables, Path(tmp) / "s"))
    histories = OperatorHistories(tables)
    for record in records:  # warm: the lookup memo and the kept operator timelines
        map_record(record, tables, TODAY, histories, labels=False)
    best = float("inf")
    for _ in range(args.repeat):
        start = time.process_time()
        for record in records:
            map_record(record, tables, TODAY, histories, labels=False)
        best = min(best, (time.process_time() - start) / len(records))
    print(
        f"batch: {len(records)} orders, map_record best of {args.repeat}: {best * 1e6:.1f} µs CPU"
    )
    record = asyncio.run(hook_record(tables))
    for _ in range(100):
        map_record(record, tables, TODAY)
    best = float("inf")
    for _ in range(args.repeat):
        start = time.process_time()
        for _ in range(args.hook_calls):
            map_record(record, tables, TODAY)
        best = min(best, (time.process_time() - start) / args.hook_calls)
    print(
        f"hook (full prefetch, labels): map_record best of {args.repeat}: {best * 1e6:.1f} µs CPU"
    )


if __name__ == "__main__":
    main()
