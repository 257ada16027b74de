"""The card audit is written behind the response (cds/store/audit_queue.py) but never lost: every
card answered has its row once the service has shut down, and feedback sent right after a card
finds that card's row."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from cds.demo.cohort_data import COHORT_NDJSON, load_ndjson
from cds.http.app_context import verify
from cds.store.repository import Store
from tests.http.service import FEEDBACK, SERVICE, running
from tests.integration.service_harness import auth, full_prefetch, hook_body

pytestmark = pytest.mark.anyio
PATIENT = "pt05"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def body() -> dict[str, Any]:
    cohort = load_ndjson(COHORT_NDJSON)
    return hook_body(
        "order-select", PATIENT, cohort, fhir_server=None, prefetch=full_prefetch(PATIENT, cohort)
    )


async def test_every_card_answered_is_audited_by_shutdown(
    tmp_path: Path, body: dict[str, Any]
) -> None:
    async with running(tmp_path) as (_, client):
        answers = await asyncio.gather(
            *(client.post(SERVICE, json=body, headers=auth(SERVICE)) for _ in range(12))
        )
    cards = [a.json()["cards"][0] for a in answers if a.status_code == 200]
    assert len(cards) == 12
    async with await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'service.db'}") as store:
        for card in cards:
            row = await store.card(card["uuid"])
            assert row is not None
            assert row.patient_ref == f"Patient/{PATIENT}"
            assert row.card == card  # the card as sent (CH-16)


async def test_feedback_right_after_the_card_finds_its_audit_row(
    tmp_path: Path, body: dict[str, Any]
) -> None:
    async with running(tmp_path) as (_, client):
        card = (await client.post(SERVICE, json=body, headers=auth(SERVICE))).json()["cards"][0]
        item = {
            "card": card["uuid"],
            "outcome": "overridden",
            "overrideReason": {"userComment": "not now"},
            "outcomeTimestamp": "2026-03-01T12:00:00Z",
        }
        stored = await client.post(FEEDBACK, json={"feedback": [item]}, headers=auth(FEEDBACK))
    assert stored.json() == {"stored": 1, "duplicate": 0, "unknown_card": 0}


async def test_the_cards_handle_holds_what_the_app_restores_and_no_copy_of_the_scores(
    tmp_path: Path, body: dict[str, Any]
) -> None:
    async with running(tmp_path) as (app, client):
        card = (await client.post(SERVICE, json=body, headers=auth(SERVICE))).json()["cards"][0]
        secret = app.state.cds.settings.app_context_secret.get_secret_value()
    context = next(link["appContext"] for link in card["links"] if link.get("appContext"))
    handle = verify(secret, context)
    assert handle is not None
    async with await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'service.db'}") as store:
        state = await store.resolve_handle(handle)
        audit = await store.card(card["uuid"])
    assert state is not None
    assert audit is not None
    assert state["patient"] == PATIENT
    assert state["case"]["inputs"] == audit.inputs  # the inputs as the card showed them
    assert set(state["case"]) == {"inputs", "context"}  # the scores live in the audit row
    assert audit.scores["operator_cto"]["name"] == "Operator-CTO"
