"""The card of every demo patient, read as a cardiologist would (issue 13).

Each patient is read twice: from the shipped NDJSON through the file source (fast, no server) and
from the real FHIR server (tests/integration/conftest.py). Expectations come from the records
themselves (the Practitioner's name, cohort_expected.json's target vessel), not from the card code.
"""

from __future__ import annotations

import asyncio
import re
from datetime import date
from typing import Any

import httpx
import pytest

from cds.mapping.tables import MappingTables, load_tables
from cds.output.cards import build_card
from cds.pipeline import score_patient
from cds.scored_case import ScoredCase
from cds.sources.fhir import FetchLimits, FhirRestSource
from cds.sources.files import FileSource
from cds.sources.record import RecordRequest
from tests.harness.invariants import check_response
from tests.output.card_cases import COHORT, body_of, ctx

TODAY = date(2026, 11, 25)
RESOURCE_ID = re.compile(
    r"\b(?:Patient|Practitioner|PractitionerRole|Observation|Procedure|Condition|Encounter|"
    r"DiagnosticReport|ServiceRequest|Organization)/[A-Za-z0-9\-.]"
)
PERCENT = re.compile(r"(?:[<>] )?\d+(?:\.\d+)?%")
DIFFICULT_OR_WORSE = {"difficult", "extremely_difficult"}
MAX_COMPLETE_LINES = 25
MAX_LINES = 30


def _score_all(source_factory: Any, patients: list[dict[str, Any]]) -> dict[str, ScoredCase]:
    tables: MappingTables = load_tables()

    async def run() -> list[tuple[ScoredCase, object]]:
        async with httpx.AsyncClient(timeout=60.0) as client:
            # One source per patient, as one per hook call: a source's deadline covers one call.
            return [
                await score_patient(
                    source_factory(client),
                    RecordRequest(patient_id=p["patient"], order_id=p["order"]),
                    tables,
                    TODAY,
                )
                for p in patients
            ]

    cases = asyncio.run(run())
    return {p["patient"]: case for p, (case, _) in zip(patients, cases, strict=True)}


def _operator_names(resources: list[dict[str, Any]]) -> dict[str, str]:
    names = {}
    for r in resources:
        if r["resourceType"] == "Practitioner" and r.get("name"):
            n = r["name"][0]
            names[r["id"]] = " ".join([*n.get("prefix", []), *n.get("given", []), n["family"]])
    return names


def _check_cards(
    cases: dict[str, ScoredCase],
    expected: dict[str, Any],
    resources: list[dict[str, Any]],
) -> list[str]:
    names = _operator_names(resources)
    wrong: list[str] = []
    for patient in expected["patients"]:
        pid = patient["patient"]
        case = cases[pid]
        card = build_card(case, ctx(patient_ref=f"Patient/{pid}"))
        detail = card.detail or ""
        first = detail.splitlines()[0]
        result = case.report.scores["operator_cto"]
        wrong += [f"{pid}: {problem}" for problem in check_response(body_of(card))]
        # 1. what was scored: target vessel and operator by name on the first line
        vessel = patient["inputs"]["target_vessel"]["value"]
        if vessel is not None and f"**Target:** {vessel} CTO" not in first:
            wrong.append(f"{pid}: target {vessel} not named first: {first}")
        name = names.get(patient["operator"])
        if name and f"**Operator:** {name}" not in first:
            wrong.append(f"{pid}: operator {name} not named: {first}")
        if "Practitioner/" in first:
            wrong.append(f"{pid}: operator shown as an id")
        # 2. indicator by what is known; a referral only when difficult or worse is certain
        reachable = {result.band} if result.band else set(result.bands)
        want = (
            "critical"
            if reachable <= DIFFICULT_OR_WORSE
            else "info"
            if result.band is not None
            else "warning"
        )
        if card.indicator != want:
            wrong.append(f"{pid}: indicator {card.indicator}, want {want} for {reachable}")
        if card.suggestions and not reachable <= DIFFICULT_OR_WORSE:
            wrong.append(f"{pid}: referral offered for {reachable}")
        if want == "warning" and "incomplete: " not in card.summary:
            wrong.append(f"{pid}: undetermined band without 'incomplete': {card.summary}")
        # 4. no resource ids in the detail
        if found := RESOURCE_ID.findall(detail):
            wrong.append(f"{pid}: resource ids in detail: {found[:3]}")
        # 5. one rounding rule: whole percentages, the summary's figures as in the detail
        for text in PERCENT.findall(card.summary):
            if "." in text or text not in detail:
                wrong.append(f"{pid}: summary {text!r} not rounded as in the detail")
        if [p for p in PERCENT.findall(detail) if "." in p]:
            wrong.append(f"{pid}: a percentage with decimals in the detail")
        ci = result.estimate.ci95 if result.estimate else None
        if "100%" in card.summary + detail and ci and ci[1] < 1:
            wrong.append(f"{pid}: an upper limit below 100 % printed as 100%")
        # 3. short: about 25 lines for a complete record
        lines = [line for line in detail.splitlines() if line.strip()]
        limit = MAX_COMPLETE_LINES if not result.missing and not case.mapping.notes else MAX_LINES
        if len(lines) > limit:
            wrong.append(f"{pid}: detail has {len(lines)} lines (> {limit})")
    return wrong


def test_cohort_cards_from_the_shipped_file(
    cohort_expected: dict[str, Any], cohort_resources: list[dict[str, Any]]
) -> None:
    source = FileSource.from_path(COHORT)
    cases = _score_all(lambda _client: source, cohort_expected["patients"])
    assert _check_cards(cases, cohort_expected, cohort_resources) == []
    # The cohort exercises every branch of the indicator policy.
    indicators = {build_card(c, ctx()).indicator for c in cases.values()}
    assert indicators == {"info", "warning", "critical"}


def test_cohort_cards_from_the_fhir_server(
    fhir_base: str,
    fhir_limits: FetchLimits,
    cohort_expected: dict[str, Any],
    cohort_resources: list[dict[str, Any]],
) -> None:
    cases = _score_all(
        lambda client: FhirRestSource(fhir_base, client, limits=fhir_limits),
        cohort_expected["patients"],
    )
    assert _check_cards(cases, cohort_expected, cohort_resources) == []


@pytest.mark.parametrize("limit", [MAX_COMPLETE_LINES])
def test_a_complete_record_fits_in_about_25_lines(limit: int) -> None:
    source = FileSource.from_path(COHORT)
    case = _score_all(lambda _client: source, [{"patient": "pt01", "order": "pt01-order"}])["pt01"]
    assert not case.report.scores["operator_cto"].missing
    detail = build_card(case, ctx()).detail or ""
    assert len([line for line in detail.splitlines() if line.strip()]) <= limit
