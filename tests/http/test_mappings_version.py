"""Which mapping tables a process scores with, said where an integration engineer and a quality
officer look: the start-up log, `/readyz`, `/metrics`, and each card's audit row."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from cds.demo.cohort_data import COHORT_NDJSON, load_ndjson
from cds.http.state import ServiceState
from cds.mapping.tables import load_tables
from tests.http.service import SERVICE, running
from tests.integration.service_harness import auth, full_prefetch, hook_body

pytestmark = pytest.mark.anyio

PATIENT = "pt23"
# A site registry entry: the site's tables differ from the defaults by this file alone.
OPERATORS = (
    "npi,practitioner_id,annual_cto_volume,cto_years,last_year_success_rate,as_of,comment\n"
    "1234567893,,70,6,0.95,2026-11-01,\n"
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_the_tables_version_is_logged_probed_measured_and_audited(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    site = tmp_path / "site-mappings"
    site.mkdir()
    (site / "operators.csv").write_text(OPERATORS, encoding="utf-8")
    version = load_tables(site).version
    assert version != load_tables().version  # the site's file counts
    cohort = load_ndjson(COHORT_NDJSON)
    body = hook_body(
        "order-select",
        PATIENT,
        cohort,
        fhir_server=None,
        prefetch=full_prefetch(PATIENT, cohort),
    )
    headers = {**auth(SERVICE), "Content-Type": "application/json"}
    with caplog.at_level(logging.INFO, logger="cds"):
        async with running(tmp_path, mappings_dir=site) as (app, client):
            ready = await client.get("/readyz")
            response = await client.post(SERVICE, content=json.dumps(body), headers=headers)
            assert response.status_code == 200, response.text
            card = response.json()["cards"][0]
            scrape = await client.get("/metrics")
            state: ServiceState = app.state.cds
            await state.audit.flush()
            audit = await state.store.card(card["uuid"])
    assert ready.json() == {"status": "ready", "mappings": version, "audit_failures": 0}
    assert f'cto_cds_mapping_tables_info{{version="{version}"}} 1.0' in scrape.text
    assert audit is not None
    assert audit.mappings_version == version  # which files mapped this card, not their paths
    started = [r for r in caplog.records if r.getMessage() == f"mapping tables {version} loaded"]
    assert started[0].name == "cds.mapping"
    assert len(started) == 1
    assert started[0].fields == {"mappings": version}  # type: ignore[attr-defined]
