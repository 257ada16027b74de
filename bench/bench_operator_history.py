"""The operator's history for a long career: bytes, requests and time of the read, before and after
the career search (docs/performance.md, "Operator history").

A local sekmet-fhir server (.venv-fhir, as the tests start it) holds one operator's 20-year career:
`--cto` CTO-PCIs and `--other` other Procedures (plain PCIs, diagnostics) by the same performer,
each with a 200-character note as real reports have. Three reads of it, each `--runs` times:

* before: `Procedure?performer=…&_count=100` under the default caps (1,000 resources, 10 pages), what
  the service did until the career search: truncated, so the experience inputs were unknown;
* before, uncapped: the same search allowed the career caps: what reading it whole would cost;
* after: the career search (performer, date before the order + 2 days, the CTO-PCI codes,
  `_elements`, 1,000 a page, `searches.CAREER_CAPS`).

Run: .venv/bin/python bench/bench_operator_history.py [--cto 3000] [--other 3000] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

from cds.demo.fhir_server import FHIR_JSON, load_cohort, running_fhir_server
from cds.mapping.operator import history_planner
from cds.mapping.tables import load_tables
from cds.sources.fhir import FetchLimits, FhirRestSource
from cds.sources.record import PatientRecord, assemble
from cds.sources.resources import ServiceRequest
from cds.sources.searches import CAREER_CAPS, PAGE_SIZE, Search, career_search

OPERATOR = "op-bench"
ORDER_DAY = date(2026, 10, 1)
FIRST_DAY = date(2006, 6, 1)
CPT = "http://www.ama-assn.org/go/cpt"
OTHER_CODES = ["92920", "93458", "93454"]  # plain PCI, diagnostic catheterisations
LIMITS = FetchLimits(timeout=30.0, deadline=120.0)


def career(cto: int, other: int) -> list[dict[str, Any]]:
    span = (ORDER_DAY - FIRST_DAY).days - 1
    out: list[dict[str, Any]] = [{"resourceType": "Practitioner", "id": OPERATOR}]
    total = cto + other
    for i in range(total):
        day = FIRST_DAY + timedelta(days=i * span // total)
        code = "92943" if i < cto else OTHER_CODES[i % 3]
        out.append(
            {
                "resourceType": "Procedure",
                "id": f"bench-{i}",
                "status": "completed",
                "code": {"coding": [{"system": CPT, "code": code}]},
                "subject": {"reference": f"Patient/bench-pt{i // 8}"},
                "performedDateTime": f"{day.isoformat()}T09:30:00Z",
                "performer": [{"actor": {"reference": f"Practitioner/{OPERATOR}"}}],
                "outcome": {"coding": [{"system": "http://snomed.info/sct", "code": "385669000"}]},
                "note": [{"text": "procedure report " + "x" * 200}],
            }
        )
    return out


async def read_once(base: str, search: Search) -> tuple[float, int, int, PatientRecord]:
    """(seconds, requests, bytes, record) of one read of `search`."""
    requests: list[int] = []

    async def count(response: httpx.Response) -> None:
        await response.aread()
        requests.append(len(response.content))

    async with httpx.AsyncClient(event_hooks={"response": [count]}) as client:
        source = FhirRestSource(base, client, limits=LIMITS)
        start = time.perf_counter()
        fetched = await source.fetch([search])
        record = assemble(fetched, PatientRecord(operator_id=OPERATOR))
        seconds = time.perf_counter() - start
    return seconds, len(requests), sum(requests), record


def measure(base: str, name: str, search: Search, runs: int) -> None:
    results = [asyncio.run(read_once(base, search)) for _ in range(runs)]
    ms = statistics.median(r[0] for r in results) * 1e3
    _, requests, size, record = results[-1]
    state = record.incomplete.get(search.key, "complete")
    print(
        f"{name:22s} {ms:8.0f} ms  {requests:4d} requests  {size / 1e6:7.2f} MB  "
        f"{len(record.operator_procedures):6d} Procedures  {state}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cto", type=int, default=3000)
    parser.add_argument("--other", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    resources = career(args.cto, args.other)
    with tempfile.TemporaryDirectory() as workdir, running_fhir_server(Path(workdir)) as base:
        with httpx.Client(timeout=120.0, headers={"Accept": FHIR_JSON}) as client:
            start = time.perf_counter()
            load_cohort(base, resources, client)
            print(
                f"loaded {len(resources) - 1} Procedures ({args.cto} CTO-PCIs) "
                f"in {time.perf_counter() - start:.1f} s; median of {args.runs} runs"
            )
        plain = f"Procedure?performer=Practitioner/{OPERATOR}&_count={PAGE_SIZE}"
        order = ServiceRequest.model_validate(
            {"resourceType": "ServiceRequest", "id": "o", "authoredOn": ORDER_DAY.isoformat()}
        )
        after = career_search(OPERATOR, history_planner(load_tables(), ORDER_DAY)(order))
        measure(
            base,
            "before (default caps)",
            Search("operator_procedures", plain, "Procedure"),
            args.runs,
        )
        uncapped = Search("operator_procedures", plain, "Procedure", caps=CAREER_CAPS)
        measure(base, "before, uncapped", uncapped, args.runs)
        measure(base, "after (career search)", after, args.runs)


if __name__ == "__main__":
    main()
