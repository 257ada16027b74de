"""A FHIR R4 server holding the synthetic cohort, once per test session.

`CTO_CDS_TEST_FHIR_BASE` points the suite at any running FHIR R4 base (e.g. HAPI, test-servers.md
§1.3); otherwise sekmet-fhir is started from `.venv-fhir` (scripts/bootstrap installs it) with its
store in a temporary directory. The cohort is PUT by id, so reloading into the same server is harmless.

Reads from that server get a deadline suited to a loaded CI machine (`FHIR_DEADLINE`), not a hook's 3 s
budget: these tests check WHAT is read; the deadline itself is tested against an injected slow server
(tests/sources/test_fhir.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from cds.demo.cohort_data import COHORT_EXPECTED, COHORT_NDJSON, load_ndjson
from cds.demo.fhir_server import FHIR_JSON, load_cohort, running_fhir_server
from cds.sources.fhir import FetchLimits

BASE_ENV = "CTO_CDS_TEST_FHIR_BASE"
PG_ENV = "CTO_CDS_TEST_DATABASE_URL"
FHIR_DEADLINE = 20.0
CI_LIMITS = FetchLimits(timeout=10.0, deadline=FHIR_DEADLINE)


@pytest.fixture(scope="session")
def fhir_limits() -> FetchLimits:
    """FetchLimits for reads from the test FHIR server (see the module docstring)."""
    return CI_LIMITS


@pytest.fixture
def fhir_deadline_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same deadline for a CLI run in a subprocess (it inherits the environment)."""
    monkeypatch.setenv("CTO_CDS_FHIR_DEADLINE", str(FHIR_DEADLINE))


@pytest.fixture(scope="session")
def cohort_resources() -> list[dict[str, Any]]:
    """The shipped cohort (tests/fixtures/test_cohort.py keeps it equal to the generator's output)."""
    return load_ndjson(COHORT_NDJSON)


@pytest.fixture(scope="session")
def cohort_expected() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(COHORT_EXPECTED.read_text("utf-8"))
    return doc


@pytest.fixture(scope="session")
def fhir_client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60.0, headers={"Accept": FHIR_JSON}) as client:
        yield client


@pytest.fixture(scope="session")
def fhir_base(
    tmp_path_factory: pytest.TempPathFactory,
    fhir_client: httpx.Client,
    cohort_resources: list[dict[str, Any]],
) -> Iterator[str]:
    with ExitStack() as stack:
        external = os.environ.get(BASE_ENV)
        if external:
            base = external.rstrip("/")
        else:
            base = stack.enter_context(running_fhir_server(tmp_path_factory.mktemp("fhir")))
        load_cohort(base, cohort_resources, fhir_client)
        yield base


@pytest.fixture
def database_urls(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Embedded SQLite always; PostgreSQL too when CTO_CDS_TEST_DATABASE_URL is set (.ci/run).

    The PostgreSQL URL names a server and a maintenance database the user may CREATE DATABASE
    from: each test gets a fresh database, dropped afterwards, so a database left at another
    schema revision never decides a test.
    """
    urls = {"sqlite": f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"}
    admin_url = os.environ.get(PG_ENV)
    if not admin_url:
        yield urls
        return
    admin = make_url(admin_url)
    name = f"cds_service_test_{uuid.uuid4().hex[:12]}"

    async def admin_sql(statement: str) -> None:
        engine = create_async_engine(admin, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(statement))
        finally:
            await engine.dispose()

    asyncio.run(admin_sql(f'CREATE DATABASE "{name}"'))
    try:
        urls["postgresql"] = admin.set(database=name).render_as_string(hide_password=False)
        yield urls
    finally:
        asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
