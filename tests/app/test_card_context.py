"""Opened from a card: the signed appContext handle restores the card's inputs (SM-08)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from cds.app.inputs_html import operator_choice
from cds.demo.ehr import cto_pci_order
from cds.http.app_context import sign, verify
from cds.mapping.tables import OperatorEntry, load_tables
from cds.settings import DEV_SECRET, Settings
from cds.store import Store
from tests.app.conftest import Ehr, fhir_answer, signed_in, token_body

CARD_INPUTS: dict[str, Any] = {
    "stump": {"value": "blunt", "sources": ["Observation/o9"], "rule": "x", "evidence": "lesion"},
    "rentrop_grade": {"value": 1, "sources": [], "rule": "y", "evidence": "lesion"},
}


def _handle(settings: Settings, patient: str, order: str | None = None) -> str:
    async def create() -> str:
        async with await Store.open(settings.database_url) as store:
            state = {"patient": patient, "order": order, "case": {"inputs": CARD_INPUTS}}
            return await store.create_handle("card-1", state, timedelta(hours=1))

    return sign(DEV_SECRET, asyncio.run(create()))


def test_verify_refuses_an_altered_handle() -> None:
    signed = sign("s3cret-value", "abc")
    assert verify("s3cret-value", signed) == "abc"
    assert verify("other-secret", signed) is None
    assert verify("s3cret-value", "abd" + signed[3:]) is None
    assert verify("s3cret-value", "no-dot") is None
    assert verify("s3cret-value", "abc.é") is None  # compare_digest's TypeError: a 500 before


@pytest.mark.parametrize(
    ("patient", "forge", "note", "restored"),
    [
        ("p1", False, "Inputs as shown on the card.", True),
        ("p2", False, "another patient", False),
        ("p1", True, "unknown or expired", False),
    ],
)
def test_card_inputs_restored_only_for_this_patient(
    client: TestClient,
    ehr: Ehr,
    app_settings: Settings,
    patient: str,
    forge: bool,
    note: str,
    restored: bool,
) -> None:
    app_context = _handle(app_settings, patient)
    if forge:
        app_context = app_context[:-2] + ("AA" if not app_context.endswith("AA") else "BB")
    ehr.token.respond(200, json=token_body(appContext=app_context))
    signed_in(client)
    text = client.get("/app/").text
    assert note in text
    assert ('<option value="blunt" selected>' in text) is restored
    assert ('data-initial="1"' in text) is restored


def test_an_ehr_app_context_that_is_not_a_handle_is_a_note_not_a_500(
    client: TestClient, ehr: Ehr
) -> None:
    for app_context in ('{"name": "Müller"}.é', "é.é", "just text"):
        ehr.token.respond(200, json=token_body(appContext=app_context))
        signed_in(client)
        page = client.get("/app/")
        assert page.status_code == 200, app_context
        assert "unknown or expired" in page.text


def test_card_inputs_restored_only_for_the_order_of_the_page(
    client: TestClient, ehr: Ehr, app_settings: Settings
) -> None:
    order = cto_pci_order(order_id="o1", patient_id="p1")

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/ServiceRequest/o1"):
            return httpx.Response(200, json=order)
        return fhir_answer(request)

    ehr.fhir.mock(side_effect=answer)
    for card_order, restored in (("ServiceRequest/o9", False), ("ServiceRequest/o1", True)):
        # A card about another order of the patient (another lesion): its findings were shown,
        # and saved, as this order's.
        ehr.token.respond(
            200,
            json=token_body(
                appContext=_handle(app_settings, "p1", card_order),
                fhirContext=[{"reference": "ServiceRequest/o1"}],
            ),
        )
        signed_in(client)
        text = client.get("/app/").text
        assert "Order ServiceRequest/o1" in text
        assert ("another order" in text) is not restored
        assert ('<option value="blunt" selected>' in text) is restored


def test_registry_operators_offered_for_what_if() -> None:
    tables = load_tables(None)
    assert operator_choice(replace(tables, operators=())) == ""
    entry = OperatorEntry(None, "prac-7", 75, 8, 0.92, "2026-01-01", "site")
    html = operator_choice(replace(tables, operators=(entry,)))
    assert 'id="operator-choice"' in html
    assert ">prac-7<" in html
    assert 'data-operator_annual_cto_volume="75"' in html
    assert 'data-operator_last_year_success_rate="0.92"' in html
