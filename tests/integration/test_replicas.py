"""Two replicas, one database (issue 10 item 3): two `cto-cds serve` processes on one PostgreSQL
database behind one public URL, as Kubernetes runs them (deploy/README.md).

The migration Job runs once (`cto-cds db upgrade`) and the replicas, with
CTO_CDS_MIGRATE_ON_START=false, only check the schema (one started before the Job refuses to
start). Then a jti used at one is refused at the other, a card's appContext handle issued by one
opens the card's inputs in the SMART app at the other, and the same feedback sent to both is stored
once. tests/integration/test_service_trust.py has the in-process replay check on SQLite too.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from cds.app.session import COOKIE
from cds.demo.ehr import EhrKeys, hook_request, sign_client_jwt
from cds.settings import Settings
from tests.cli.test_app import run
from tests.integration.app_sessions import signed_in
from tests.integration.conftest import FHIR_DEADLINE, PG_ENV
from tests.integration.serve_process import ISS, serve_env, serving, start_fails, trust_file
from tests.integration.service_harness import full_prefetch

SERVICE = "/cds-services/operator-cto"
FEEDBACK = SERVICE + "/feedback"
PATIENT = "pt04"
SECRET = "replicas-share-this-secret-" + uuid.uuid4().hex


async def _schema(url: str) -> list[tuple[str, ...]]:
    """What DDL would change: every table's oid and the alembic row's version and xmin."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            tables = await conn.execute(
                text(
                    "SELECT relname, oid::text FROM pg_class "
                    "WHERE relnamespace = 'public'::regnamespace ORDER BY relname"
                )
            )
            version = await conn.execute(
                text("SELECT version_num, xmin::text FROM alembic_version")
            )
            return [tuple(r) for r in tables] + [tuple(r) for r in version]
    finally:
        await engine.dispose()


async def _feedback_rows(url: str, card: str) -> int:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            found = await conn.execute(
                text("SELECT count(*) FROM feedback WHERE card_uuid = :card"), {"card": card}
            )
            return int(found.scalar_one())
    finally:
        await engine.dispose()


def test_two_replicas_share_jti_handles_and_feedback_and_migrate_once(
    tmp_path: Path,
    database_urls: dict[str, str],
    fhir_base: str,
    cohort_resources: list[dict[str, Any]],
) -> None:
    url = database_urls.get("postgresql")
    if url is None:
        pytest.skip(f"two replicas need PostgreSQL: set {PG_ENV} (.ci/run sets it)")
    keys = EhrKeys.generate("ES384", kid="replicas")
    public = "http://127.0.0.1:8000"  # the load balancer's URL: the JWTs' aud at both replicas
    env = serve_env(
        public_base_url=public,
        trusted_clients=str(trust_file(tmp_path, keys)),
        allowed_fhir_servers=fhir_base,
        database_url=url,
        fhir_deadline=str(FHIR_DEADLINE),
        app_context_secret=SECRET,
        migrate_on_start="false",
    )

    # Migrations run once: a replica before the Job refuses to start; the Job; the replicas no DDL.
    early = start_fails(env, tmp_path)
    assert early.returncode == 2
    assert "run the store migrations first" in early.stderr
    job = run("db", "upgrade", env={"CTO_CDS_DATABASE_URL": url})
    assert job.returncode == 0, job.stderr
    migrated = asyncio.run(_schema(url))

    def signed(path: str, jti: str | None = None) -> dict[str, str]:
        token = sign_client_jwt(keys, ISS, public + path, jti=jti) if jti else None
        return {"Authorization": f"Bearer {token or sign_client_jwt(keys, ISS, public + path)}"}

    with (
        serving(env, tmp_path, tmp_path / "a.log") as a,
        serving(env, tmp_path, tmp_path / "b.log") as b,
        httpx.Client(timeout=60) as ehr,
    ):
        # A jti used at one replica is refused at the other, both ways.
        for first, second in ((a, b), (b, a)):
            once = signed("/cds-services", jti=f"replica-{uuid.uuid4()}")
            assert ehr.get(first + "/cds-services", headers=once).status_code == 200
            assert ehr.get(second + "/cds-services", headers=once).status_code == 401

        # A card from A; its appContext handle opens the card's inputs in the app at B.
        order = next(
            r
            for r in cohort_resources
            if r["resourceType"] == "ServiceRequest"
            and r["subject"]["reference"] == f"Patient/{PATIENT}"
        )
        body = hook_request(
            "order-select",
            order=order,
            patient_id=PATIENT,
            prefetch=full_prefetch(PATIENT, cohort_resources),
        )
        answered = ehr.post(a + SERVICE, json=body, headers=signed(SERVICE))
        assert answered.status_code == 200, answered.text
        (card,) = answered.json()["cards"]
        (link,) = [x for x in card["links"] if x["type"] == "smart"]
        settings = Settings(app_context_secret=SECRET, database_url=url)
        for handle, note in (
            (link["appContext"], "Inputs as shown on the card."),
            ("not-a-handle.x", "unknown or expired"),  # the page says when it is not found
        ):
            cookie = asyncio.run(
                signed_in(
                    url,
                    settings,
                    fhir_base,
                    {
                        "scope": "launch patient/*.read openid fhirUser",
                        "can_write": False,
                        "patient": PATIENT,
                        "appContext": handle,
                    },
                    timedelta(minutes=10),
                )
            )
            page = ehr.get(b + "/app/", headers={"Cookie": f"{COOKIE}={cookie}"})
            assert page.status_code == 200, page.text
            assert note in page.text

        # The same feedback to both replicas: stored once.
        item = {
            "card": card["uuid"],
            "outcome": "overridden",
            "outcomeTimestamp": "2026-12-01T10:00:00Z",
            "overrideReason": {"reason": card["overrideReasons"][1]},
        }
        results = [
            ehr.post(r + FEEDBACK, json={"feedback": [item]}, headers=signed(FEEDBACK)).json()
            for r in (a, b)
        ]
        assert results == [
            {"stored": 1, "duplicate": 0, "unknown_card": 0},
            {"stored": 0, "duplicate": 1, "unknown_card": 0},
        ]
        assert asyncio.run(_feedback_rows(url, card["uuid"])) == 1
    assert asyncio.run(_schema(url)) == migrated  # the replicas ran no DDL
