"""Probes, the score's page, and the API docs' visibility."""

from __future__ import annotations

import html
import re
import sqlite3
from pathlib import Path

import pytest

from cds.http import about_page
from cds.mapping.tables import load_tables
from cds.scoring.estimate import wilson_interval
from cds.scoring.scores.operator_cto import OPERATOR_CTO
from cds.settings import Environment, Settings
from cds.store.engine import HEAD
from tests.http.service import running

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_probes_need_no_token(tmp_path: Path) -> None:
    async with running(tmp_path) as (_, client):
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "mappings": load_tables().version,
        "audit_failures": 0,
    }


async def test_readyz_notices_the_sqlite_file_deleted_under_the_service(tmp_path: Path) -> None:
    async with running(tmp_path) as (_, client):
        assert (await client.get("/readyz")).status_code == 200
        (tmp_path / "service.db").unlink()
        gone = await client.get("/readyz")
        # A new, empty file at the same path is not the database either.
        (tmp_path / "service.db").write_bytes(b"")
        replaced = await client.get("/readyz")
        assert (await client.get("/healthz")).status_code == 200  # alive, just not ready
    assert gone.status_code == 503
    assert gone.headers["retry-after"]
    assert "missing" in gone.json()["issue"][0]["diagnostics"]
    assert replaced.status_code == 503
    assert "replaced" in replaced.json()["issue"][0]["diagnostics"]


def test_about_page_is_generated_from_the_score_definition() -> None:
    page = about_page.render()
    for item in OPERATOR_CTO.items:
        assert html.escape(item.label) in page
    for band in OPERATOR_CTO.bands:
        estimate = band.estimate
        assert estimate is not None
        assert estimate.successes is not None
        assert estimate.n is not None
        low, high = wilson_interval(estimate.successes, estimate.n)
        assert f"{estimate.successes} / {estimate.n}" in page
        assert f"{low:.0%} to {high:.0%}" in page
    assert "−2" in page  # the operator success criterion subtracts 2 points
    assert "<script" not in page
    assert not re.search(r"(src|href)=\"(?!https://doi\.org/)", page)


async def test_about_page_is_served_where_the_card_links(tmp_path: Path) -> None:
    async with running(tmp_path) as (_, client):
        response = await client.get(about_page.PATH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "Operator-CTO" in response.text


@pytest.mark.parametrize(("environment", "served"), [("development", True), ("test", False)])
async def test_api_docs_only_in_development(
    tmp_path: Path, environment: Environment, served: bool
) -> None:
    trusted = tmp_path / "trusted.yaml"
    trusted.write_text("- iss: https://ehr.example.org\n  jwks_url: https://ehr.example.org/jwks\n")
    config = Settings(
        environment=environment,
        public_base_url="https://cds.example.org",
        app_context_secret="s" * 40,
        trusted_clients=trusted,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'docs.db'}",
    )
    async with running(tmp_path, config) as (_, client):
        for path in ("/docs", "/redoc", "/openapi.json"):
            response = await client.get(path)
            assert (response.status_code == 200) is served, path
            if not served:
                assert response.json()["resourceType"] == "OperationOutcome"


async def test_served_apps_freeze_the_start_up_heap_out_of_the_collector(tmp_path: Path) -> None:
    import gc

    from cds.main import GC_YOUNG_THRESHOLD, create_app
    from tests.integration.service_harness import TRUSTED, settings

    gc.unfreeze()
    thresholds = gc.get_threshold()
    app = create_app(settings(tmp_path, None), trusted=TRUSTED, freeze_gc=True)
    try:
        async with app.router.lifespan_context(app):
            frozen = gc.get_freeze_count()
            served = gc.get_threshold()
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    assert frozen > 1000  # the tables, the app, the state: tens of thousands of objects
    assert served == (GC_YOUNG_THRESHOLD, *thresholds[1:])
    assert thresholds[0] < GC_YOUNG_THRESHOLD


def test_dependencies_on_the_hook_path_run_on_the_event_loop() -> None:
    # A plain `def` dependency would run in a worker thread on every call (measured: ~1 ms).
    import inspect

    from cds.http.deps import get_state, verified_client

    assert inspect.iscoroutinefunction(get_state)
    assert inspect.iscoroutinefunction(verified_client)


def test_each_worker_builds_its_app_from_the_environment_and_only_checks_the_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cds.main import served_app, served_settings

    monkeypatch.setenv("CTO_CDS_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    monkeypatch.setenv("CTO_CDS_PUBLIC_BASE_URL", "https://cds.example.org")
    app = served_app()
    assert app.title.startswith("cto-cds")
    assert served_settings(Settings()).migrate_on_start is False  # the parent migrated already


async def test_readyz_stays_ready_on_a_newer_schema_that_admits_this_release(
    tmp_path: Path,
) -> None:
    """A rolling update: the new release's migration Job has run, the old replicas keep serving;
    they turn unready only if the new schema no longer admits them (cds/store/engine.py)."""

    def leave_at(revision: str, oldest_compatible: str) -> None:
        with sqlite3.connect(tmp_path / "service.db") as connection:
            connection.execute("UPDATE alembic_version SET version_num = ?", (revision,))
            connection.execute(
                "UPDATE schema_compat SET oldest_compatible = ?", (oldest_compatible,)
            )

    async with running(tmp_path) as (_, client):
        leave_at("0999", oldest_compatible=HEAD)
        newer = await client.get("/readyz")
        leave_at("0999", oldest_compatible="0999")
        breaking = await client.get("/readyz")
        leave_at("0001", oldest_compatible="0001")
        behind = await client.get("/readyz")
    assert newer.status_code == 200
    assert breaking.status_code == 503
    assert breaking.json()["issue"][0]["diagnostics"] == (
        f"not ready: schema at revision 0999 admits only releases from 0999 on, this version is at "
        f"{HEAD}: deploy a newer release"
    )
    assert behind.status_code == 503
    assert "run the store migrations first" in behind.json()["issue"][0]["diagnostics"]
