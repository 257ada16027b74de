"""EHR text the card quotes (a prefetch OperationOutcome's diagnostics) holding NUL or a lone
surrogate: the card is answered, and audited with U+FFFD in their place, on SQLite and PostgreSQL.

A lone surrogate used to make the response unencodable (a 500, the card and its audit lost); NUL
reached the stored JSON as `\\u0000`, which PostgreSQL cannot turn into text or jsonb.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cds.demo.cohort_data import COHORT_NDJSON, load_ndjson
from cds.http.state import ServiceState
from tests.http.service import SERVICE, running
from tests.integration.service_harness import auth, full_prefetch, hook_body
from tests.store.conftest import database_url  # noqa: F401 (fixture: SQLite, and PostgreSQL when set)

pytestmark = pytest.mark.anyio

PATIENT = "pt23"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *strings(v)]]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return []


@pytest.mark.parametrize("bad", ["\x00", "\ud800"], ids=["nul", "lone-surrogate"])
async def test_a_card_quoting_unstorable_prefetch_text_is_answered_and_audited(
    tmp_path: Path,
    database_url: str,  # noqa: F811 (the imported fixture)
    bad: str,
) -> None:
    cohort = load_ndjson(COHORT_NDJSON)
    prefetch: dict[str, Any] = full_prefetch(PATIENT, cohort)
    prefetch["conditions"] = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "timeout", "diagnostics": f"slow{bad}db"}],
    }
    body = hook_body("order-sign", PATIENT, cohort, fhir_server=None, prefetch=prefetch)
    raw = json.dumps(body).encode()  # ASCII JSON: the lone surrogate travels as \ud800
    headers = {**auth(SERVICE), "Content-Type": "application/json"}
    async with running(tmp_path, database_url=database_url) as (app, client):
        response = await client.post(SERVICE, content=raw, headers=headers)
        assert response.status_code == 200, response.text
        card = response.json()["cards"][0]
        state: ServiceState = app.state.cds
        await state.audit.flush()
        audit = await state.store.card(card["uuid"])
        assert state.audit_failures == 0
    assert "prior CABG" in card["detail"] or "conditions" in card["detail"]
    assert bad not in card["detail"]
    assert audit is not None
    stored = strings(audit.model_dump(mode="json"))
    assert any("slow\ufffddb" in s for s in stored)  # the diagnostics, kept with U+FFFD
    assert not any(bad in s for s in stored)
