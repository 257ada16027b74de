"""Hot path: reading a hook-sized record with the lean models vs full fhir.resources validation,
the whole map + score step, and a large prefetch (6,000 extra resources in one search).

The large prefetch measures `assemble` (parse + de-duplicate): linear since de-duplication is
set-based (before: a linear scan per resource: 6.5-7.5 s here, 0.18 s after), and capped per
search at FetchLimits.max_resources by the prefetch source, so a hostile prefetch costs bounded work.

Run: .venv/bin/python bench/bench_record.py
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

from fhir.resources.R4B import get_fhir_model_class

from cds.demo.cohort_data import COHORT_NDJSON
from cds.mapping.tables import load_tables
from cds.pipeline import score_record
from cds.sources.prefetch import PrefetchSource
from cds.sources.record import Fetched, PatientRecord, assemble
from cds.sources.resources import parse_resource
from cds.sources.searches import patient_searches

ROOT = Path(__file__).resolve().parents[1]
KEYS = {
    "Patient": "patient",
    "Condition": "conditions",
    "Procedure": "procedures",
    "Observation": "observations",
    "DiagnosticReport": "reports",
    "ServiceRequest": "orders",
}


def timed(name: str, work: Callable[[], object], seconds: float = 2.0) -> float:
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        work()
        count += 1
    per = (time.perf_counter() - start) / count
    print(f"{name:52s} {per * 1e3:8.3f} ms")
    return per


def main() -> None:
    lines = (COHORT_NDJSON).read_text().splitlines()
    resources = [json.loads(line) for line in lines]
    # A hook-sized record: one patient's resources plus operator history, 75 resources in all.
    mine = [r for r in resources if "pt23" in json.dumps(r.get("subject", r.get("id")))]
    history = [
        r
        for r in resources
        if r["resourceType"] == "Procedure" and "op-expert" in json.dumps(r.get("performer"))
    ]
    sample = (mine + history)[:75]
    text = json.dumps(sample)
    print(f"{len(sample)} resources, {len(text)} bytes of JSON")
    parse = timed("json.loads", lambda: json.loads(text))
    lean = timed(
        "json.loads + lean models (cds.sources.resources)",
        lambda: [parse_resource(r) for r in json.loads(text)],
    )
    full = timed(
        "json.loads + fhir.resources R4B model_validate",
        lambda: [
            get_fhir_model_class(r["resourceType"]).model_validate(r) for r in json.loads(text)
        ],
    )
    print(f"lean / parse = {lean / parse:.1f}x, full / parse = {full / parse:.1f}x")
    tables = load_tables()
    fetched: dict[str, list[dict[str, object]]] = {}
    for r in sample:
        fetched.setdefault(KEYS.get(r["resourceType"], "operator_procedures"), []).append(r)

    def record() -> PatientRecord:
        rec = PatientRecord(patient_id="pt23", operator_id="op-expert")
        return assemble({k: Fetched(k, tuple(v)) for k, v in fetched.items()}, rec)

    timed("assemble record (lean parse)", record)
    rec = record()
    timed("map + score (pure)", lambda: score_record(rec, tables, date(2026, 11, 25)))
    large_prefetch()


def large_prefetch(extra: int = 6000) -> None:
    """One Observation search holding `extra` resources: uncapped assemble, and the capped
    prefetch source (what a hook call actually pays)."""
    observations = tuple(
        {
            "resourceType": "Observation",
            "id": f"obs-{i}",
            "status": "final",
            "code": {"text": "finding"},
            "subject": {"reference": "Patient/pt23"},
        }
        for i in range(extra)
    )

    def uncapped() -> PatientRecord:
        fetched = {"observations": Fetched("observations", observations)}
        return assemble(fetched, PatientRecord(patient_id="pt23"))

    prefetch = {
        "observations": {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": r} for r in observations],
        }
    }
    search = [s for s in patient_searches("pt23") if s.key == "observations"]

    def capped() -> PatientRecord:
        fetched = asyncio.run(PrefetchSource(prefetch).fetch(search))
        return assemble(fetched, PatientRecord(patient_id="pt23"))

    timed(f"assemble {extra} observations (uncapped)", uncapped, seconds=3.0)
    timed(f"prefetch source + assemble, {extra} (capped)", capped, seconds=3.0)


if __name__ == "__main__":
    main()
