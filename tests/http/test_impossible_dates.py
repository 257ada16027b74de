"""Dates of the FHIR form that name no day (2019-02-30, year 0000) or that Python's datetime cannot
hold (a leap second) in a hook's prefetch or order: the call still gets its card naming the
resource and element it could not read (or, for the Patient itself, a 412 naming them). Left to
the mapping, 2019-02-30 in an unrelated asthma entry failed the whole call with a 500 and no
card."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from cds.demo.cohort_data import COHORT_NDJSON, load_ndjson
from tests.http.service import SERVICE, running
from tests.integration.service_harness import auth, full_prefetch, hook_body

pytestmark = pytest.mark.anyio

PATIENT = "pt23"
ASTHMA = {
    "resourceType": "Condition",
    "id": "asthma1",
    "subject": {"reference": f"Patient/{PATIENT}"},
    "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "J45.909"}]},
    "onsetDateTime": "2019-02-30",
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def card_for(tmp_path: Path, body: dict[str, Any]) -> dict[str, Any]:
    headers = {**auth(SERVICE), "Content-Type": "application/json"}
    async with running(tmp_path) as (_, client):
        response = await client.post(SERVICE, content=json.dumps(body), headers=headers)
    assert response.status_code == 200, response.text
    cards: list[dict[str, Any]] = response.json()["cards"]
    (card,) = cards
    assert card["summary"].startswith("Operator-CTO"), card["summary"]
    return card


async def test_an_unrelated_condition_dated_on_no_day_is_named_not_a_500(tmp_path: Path) -> None:
    cohort = load_ndjson(COHORT_NDJSON)
    prefetch = full_prefetch(PATIENT, cohort)
    prefetch["conditions"]["entry"].append({"resource": ASTHMA})
    body = hook_body("order-select", PATIENT, cohort, fhir_server=None, prefetch=prefetch)
    card = await card_for(tmp_path, body)
    assert (
        "conditions: malformed resource: Condition/asthma1: onsetDateTime: Value error, no such "
        "day in the calendar"
    ) in card["detail"]
    assert "prior CABG **unknown**" in card["detail"]  # the search it spoiled: unknown, not "no"


@pytest.mark.parametrize(
    ("birth_date", "problem"),
    [
        # Before, the age computed from year 0 failed with a 500.
        ("0000-01-01", "no such day in the calendar"),
        # Full-width digits: FHIR's pattern means ASCII 0-9.
        ("１９５５-03-02", "not a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)"),
    ],
)
async def test_an_unreadable_birth_date_is_refused_naming_it(
    tmp_path: Path, birth_date: str, problem: str
) -> None:
    """An unreadable Patient is a 412 naming what could not be read (docs/operations.md), as for
    any malformed element of it."""
    cohort = load_ndjson(COHORT_NDJSON)
    prefetch = full_prefetch(PATIENT, cohort)
    patient = copy.deepcopy(prefetch["patient"])
    patient["birthDate"] = birth_date
    prefetch["patient"] = patient
    body = hook_body("order-select", PATIENT, cohort, fhir_server=None, prefetch=prefetch)
    headers = {**auth(SERVICE), "Content-Type": "application/json"}
    async with running(tmp_path) as (_, client):
        response = await client.post(SERVICE, content=json.dumps(body), headers=headers)
    assert response.status_code == 412, response.text
    (issue,) = response.json()["issue"]
    assert issue["diagnostics"].endswith(f"Patient/{PATIENT}: birthDate: Value error, {problem}")
    assert issue["expression"] == ["prefetch.patient"]


async def test_an_order_authored_in_a_leap_second_is_dated_by_its_day(tmp_path: Path) -> None:
    cohort = load_ndjson(COHORT_NDJSON)
    prefetch = full_prefetch(PATIENT, cohort)
    order = copy.deepcopy(
        next(e["resource"] for e in prefetch["orders"]["entry"] if "CTO" in json.dumps(e))
    )
    order["authoredOn"] = "2026-10-12T23:59:60Z"  # FHIR's dateTime admits second 60
    body = hook_body(
        "order-select", PATIENT, cohort, fhir_server=None, prefetch=prefetch, order=order
    )
    card = await card_for(tmp_path, body)
    assert "**Order:** CTO PCI" in card["detail"]
    assert "2026-10-12" in card["detail"].split("\n")[0]


async def test_an_order_dated_at_the_calendars_end_is_refused_naming_it(tmp_path: Path) -> None:
    # The career search's margin past the order's day overflowed (a 500); computed, the patient
    # would be 8,000 years old and the operator's practice as long.
    cohort = load_ndjson(COHORT_NDJSON)
    prefetch = full_prefetch(PATIENT, cohort)
    order = copy.deepcopy(
        next(e["resource"] for e in prefetch["orders"]["entry"] if "CTO" in json.dumps(e))
    )
    order["authoredOn"] = "9999-12-31"
    body = hook_body(
        "order-select", PATIENT, cohort, fhir_server=None, prefetch=prefetch, order=order
    )
    headers = {**auth(SERVICE), "Content-Type": "application/json"}
    async with running(tmp_path) as (_, client):
        response = await client.post(SERVICE, content=json.dumps(body), headers=headers)
    assert response.status_code == 400
    (issue,) = response.json()["issue"]
    assert issue["expression"] == [f"ServiceRequest/{order['id']}.authoredOn"]
    assert issue["diagnostics"] == "'9999-12-31' is at the end of the calendar: not an order date"


@pytest.mark.parametrize(
    ("when", "why"),
    [
        ("２０２６-10-12", "not a FHIR dateTime"),
        ("2026-10-1２", "not a FHIR dateTime"),
        ("2026-10-12T1０:00:00Z", "not a FHIR dateTime"),
        ("2026-02-30", "no such day in the calendar"),  # no card, without a word, before
    ],
)
async def test_an_order_dated_in_other_digits_is_refused_naming_it(
    tmp_path: Path, when: str, why: str
) -> None:
    """Full-width digits matched `\\d` in the date patterns and `int` read them: the order was
    dated 2026-10-12. FHIR's dates are ASCII digits. A CTO-PCI order whose date cannot be read
    got no card and no word, as if it were no CTO-PCI."""
    cohort = load_ndjson(COHORT_NDJSON)
    prefetch = full_prefetch(PATIENT, cohort)
    order = copy.deepcopy(
        next(e["resource"] for e in prefetch["orders"]["entry"] if "CTO" in json.dumps(e))
    )
    order["authoredOn"] = when
    body = hook_body(
        "order-select", PATIENT, cohort, fhir_server=None, prefetch=prefetch, order=order
    )
    headers = {**auth(SERVICE), "Content-Type": "application/json"}
    async with running(tmp_path) as (_, client):
        response = await client.post(SERVICE, content=json.dumps(body), headers=headers)
    assert response.status_code == 400, response.text
    (issue,) = response.json()["issue"]
    assert issue["expression"] == [f"ServiceRequest/{order['id']}.authoredOn"]
    assert issue["diagnostics"] == f"Value error, {why}"
