"""Faults on the FHIR server become unknown inputs with a reason: nothing crashes, nothing guessed."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from typing import Any

import httpx
import pytest

from cds.mapping.tables import load_tables
from cds.pipeline import score_patient
from cds.sources.fhir import FetchLimits, FhirRestSource
from cds.sources.record import RecordRequest
from tests.mapping.fhir import ICD10, condition, order, patient

BASE = "http://fhir.test/r4"


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources],
    }


def serve(fault: str) -> httpx.MockTransport:
    async def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/r4/")
        if path.startswith("Condition"):
            if fault == "timeout":
                await asyncio.sleep(5)
            if fault == "500":
                return httpx.Response(500)
            if fault == "garbage":
                return httpx.Response(200, content=b"{not json")
            if fault == "outcome":
                return httpx.Response(
                    403,
                    json={
                        "resourceType": "OperationOutcome",
                        "issue": [
                            {
                                "severity": "error",
                                "code": "forbidden",
                                "diagnostics": "scope refused",
                            }
                        ],
                    },
                )
        if path == "Patient/p1":
            return httpx.Response(200, json=patient())
        if path == "ServiceRequest/o1":
            return httpx.Response(200, json=order(performer=None))
        if path.startswith("Condition"):
            return httpx.Response(200, json=bundle(condition("c1", ICD10, "Z95.1")))
        return httpx.Response(200, json=bundle())

    return httpx.MockTransport(handler)


@pytest.mark.parametrize("fault", ["timeout", "500", "garbage", "outcome"])
def test_failed_condition_search_leaves_history_unknown(fault: str) -> None:
    async def run() -> Any:
        async with httpx.AsyncClient(transport=serve(fault)) as client:
            source = FhirRestSource(
                BASE, client, limits=FetchLimits(timeout=0.5, deadline=1.0, retries=0)
            )
            return await score_patient(
                source, RecordRequest("p1", order_id="o1"), load_tables(), date(2026, 11, 25)
            )

    case, record = asyncio.run(run())
    assert "conditions" in record.incomplete
    prior = case.mapping.inputs["prior_cabg"]
    assert prior.value is None
    assert prior.evidence == "unknown"
    assert "conditions" in (prior.note or "")
    castle = case.report.scores["castle"]
    assert castle.points is None
    assert "prior_cabg" in castle.missing
    assert case.mapping.inputs["age_years"].value == 71  # what could be read is still used
    assert "token" not in json.dumps(case.contract()).lower()


def test_healthy_server_reads_the_cabg() -> None:
    async def run() -> Any:
        async with httpx.AsyncClient(transport=serve("none")) as client:
            return await score_patient(
                FhirRestSource(BASE, client),
                RecordRequest("p1", order_id="o1"),
                load_tables(),
                date(2026, 11, 25),
            )

    case, _ = asyncio.run(run())
    assert case.mapping.inputs["prior_cabg"].value is True
