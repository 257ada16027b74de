"""`cto-cds demo`: a real local FHIR server with the synthetic cohort, read, mapped and scored.

An edge module (starts a server process, loads data over HTTP); everything it shows comes from the
same `score_patient` path the CDS Hooks service and the CLI use.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import httpx
from rich.console import Console

from cds.demo.cohort import load_ndjson
from cds.demo.fhir_server import load_cohort, running_fhir_server
from cds.mapping.tables import load_tables
from cds.output.console import print_brief
from cds.pipeline import ScoredCase, score_patient
from cds.sources.fhir import FhirRestSource
from cds.sources.record import RecordRequest

COHORT = Path(__file__).parent / "cohort.ndjson"
# Shown by default: an easy lesion, a CABG to the target with an operator at the thresholds, a
# newcomer, and a record with almost nothing documented.
DEFAULT_PATIENTS = ("pt01", "pt04", "pt08", "pt23", "pt25")


async def _score(base: str, patients: Sequence[str], today: date) -> list[ScoredCase]:
    tables = load_tables()
    async with httpx.AsyncClient() as client:
        source = FhirRestSource(base, client)
        results = await asyncio.gather(
            *(score_patient(source, RecordRequest(patient_id=p), tables, today) for p in patients)
        )
    return [case for case, _ in results]


def run_demo(patients: Sequence[str] = DEFAULT_PATIENTS, console: Console | None = None) -> int:
    console = console or Console()
    resources = load_ndjson(COHORT)
    with tempfile.TemporaryDirectory(prefix="cto-cds-demo-") as workdir:
        console.print("starting a local FHIR R4 server (sekmet-fhir) …")
        with running_fhir_server(Path(workdir)) as base:
            with httpx.Client(timeout=30) as client:
                counts = load_cohort(base, resources, client)
            console.print(
                f"FHIR server {base}: loaded {sum(counts.values())} resources "
                f"({', '.join(f'{n} {k}' for k, n in sorted(counts.items()))})"
            )
            cases = asyncio.run(_score(base, patients, date.today()))
    for patient, case in zip(patients, cases, strict=True):
        print_brief(patient, case, console)
    return 0
