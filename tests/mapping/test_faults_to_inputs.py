"""Faults on the FHIR server, and incomplete prefetch, become unknown inputs with a reason: nothing
crashes, nothing guessed, and a patient WITH a CABG never reads as "prior CABG: not documented".

respx injects the faults (the project's one HTTP-mocking style); healthy reads belong to
tests/integration.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import pytest
import respx

from cds.mapping.tables import load_tables
from cds.pipeline import score_patient
from cds.sources.fhir import FetchLimits, FhirRestSource
from cds.sources.prefetch import PrefetchSource
from cds.sources.record import RecordRequest
from tests.mapping.fhir import ICD10, condition, order, patient

BASE = "http://fhir.test/r4"
TODAY = date(2026, 11, 25)


def bundle(*resources: dict[str, Any], total: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources],
    }
    if total is not None:
        body["total"] = total
    return body


async def _slow(request: httpx.Request) -> httpx.Response:
    await asyncio.sleep(5)
    return httpx.Response(200, json=bundle())


FAULTS: dict[str, Any] = {
    "timeout": _slow,
    "500": httpx.Response(500),
    "garbage": httpx.Response(200, content=b"{not json"),
    "outcome": httpx.Response(
        403,
        json={
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "forbidden", "diagnostics": "scope refused"}],
        },
    ),
    "total-not-reached": httpx.Response(200, json=bundle(total=1)),
    "too-large": httpx.Response(
        200, json=bundle(*(condition(f"c{i}", ICD10, "I10") for i in range(400)))
    ),
}
WORDING = {
    "timeout": "not read in time",
    "500": "server error",
    "garbage": "malformed resource",
    "outcome": "server refused",
    "total-not-reached": "incomplete search result",
    "too-large": "response too large",
}


@pytest.fixture
def server() -> Iterator[respx.MockRouter]:
    """Patient p1 with a prior CABG (Z95.1) and order o1; tests add a fault on the Condition search."""
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


def serve_healthy(router: respx.MockRouter) -> None:
    router.get("/Patient/p1").respond(json=patient())
    router.get("/ServiceRequest/o1").respond(json=order(performer=None))
    router.get("/Condition").respond(json=bundle(condition("c1", ICD10, "Z95.1")))
    router.get(path__regex=r".*").respond(json=bundle())


def rest(client: httpx.AsyncClient) -> FhirRestSource:
    limits = FetchLimits(timeout=0.5, deadline=1.0, retries=0, max_bytes=20_000)
    return FhirRestSource(BASE, client, limits=limits)


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_failed_condition_search_leaves_history_unknown(
    server: respx.MockRouter, fault: str
) -> None:
    serve_healthy(server)
    answer = FAULTS[fault]
    route = server.get("/Condition")  # replaces the healthy Condition route (same pattern)
    if callable(answer):
        route.mock(side_effect=answer)
    else:
        route.mock(return_value=answer)

    async def run() -> Any:
        async with httpx.AsyncClient() as client:
            return await score_patient(
                rest(client), RecordRequest("p1", order_id="o1"), load_tables(), TODAY
            )

    case, record = asyncio.run(run())
    assert "conditions" in record.incomplete
    assert WORDING[fault] in record.incomplete["conditions"]
    prior = case.mapping.inputs["prior_cabg"]
    assert prior.value is None
    assert prior.evidence == "unknown"
    assert "conditions" in (prior.note or "")
    assert WORDING[fault] in (prior.note or "")
    castle = case.report.scores["castle"]
    assert castle.points is None
    assert "prior_cabg" in castle.missing
    assert case.mapping.inputs["age_years"].value == 71  # what could be read is still used
    assert "token" not in json.dumps(case.contract()).lower()


def test_healthy_server_reads_the_cabg(server: respx.MockRouter) -> None:
    serve_healthy(server)

    async def run() -> Any:
        async with httpx.AsyncClient() as client:
            return await score_patient(
                rest(client), RecordRequest("p1", order_id="o1"), load_tables(), TODAY
            )

    case, _ = asyncio.run(run())
    assert case.mapping.inputs["prior_cabg"].value is True


def other_patients_prefetch() -> dict[str, Any]:
    """A prefetch filled for the wrong patient: its Condition search holds only p2's record."""
    return {
        "patient": patient(),
        "conditions": bundle(
            {**condition("c9", ICD10, "I10"), "subject": {"reference": "Patient/p2"}}
        ),
        "procedures": bundle(),
        "observations": bundle(),
        "reports": bundle(),
        "orders": bundle(),
    }


def test_another_patients_prefetch_is_re_read_from_the_server(server: respx.MockRouter) -> None:
    serve_healthy(server)

    async def run() -> Any:
        async with httpx.AsyncClient() as client:
            source = PrefetchSource(other_patients_prefetch(), rest(client))
            return await score_patient(
                source, RecordRequest("p1", order_id="o1"), load_tables(), TODAY
            )

    case, record = asyncio.run(run())
    assert record.complete("conditions")
    assert case.mapping.inputs["prior_cabg"].value is True  # the CABG the prefetch left out


def test_another_patients_prefetch_without_a_server_is_unknown_not_no() -> None:
    source = PrefetchSource({**other_patients_prefetch(), "order": order(performer=None)}, None)
    case, _ = asyncio.run(
        score_patient(source, RecordRequest("p1", order_id="o1"), load_tables(), TODAY)
    )
    prior = case.mapping.inputs["prior_cabg"]
    assert prior.value is None
    assert prior.evidence == "unknown"
    assert "incomplete search result" in (prior.note or "")
