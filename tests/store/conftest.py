"""Store tests run on embedded SQLite always, and on PostgreSQL when CTO_CDS_TEST_DATABASE_URL is set.

The PostgreSQL URL names a server and a maintenance database the user may CREATE DATABASE from
(e.g. `postgresql+asyncpg://postgres@127.0.0.1:5432/test`); each test gets a fresh database,
dropped afterwards, so tests are isolated and every run migrates from an empty schema.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from cds.store import CardAuditIn, Store
from cds.store.engine import alembic_config

PG_ENV = "CTO_CDS_TEST_DATABASE_URL"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "postgresql",
            marks=pytest.mark.skipif(not os.environ.get(PG_ENV), reason=f"set {PG_ENV}"),
        ),
    ]
)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A URL to an empty database of the parametrised backend."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
        return
    async with fresh_postgres() as url:
        yield url


@asynccontextmanager
async def fresh_postgres() -> AsyncIterator[str]:
    """A URL to a new, empty database on the PostgreSQL server PG_ENV names; dropped afterwards."""
    admin_url = make_url(os.environ[PG_ENV])
    name = f"cds_store_test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield admin_url.set(database=name).render_as_string(hide_password=False)
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


@dataclass
class Clock:
    """A settable clock for `Store(clock=...)`."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(database_url: str, clock: Clock) -> AsyncIterator[Store]:
    async with await Store.open(database_url, clock=clock) as opened:
        yield opened


def card_audit(card_uuid: str | None = None, **changes: Any) -> CardAuditIn:
    """A realistic audit row: unicode text, awkward floats, nested provenance."""
    card_uuid = card_uuid or str(uuid.uuid4())
    fields: dict[str, Any] = {
        "card_uuid": card_uuid,
        "service_id": "operator-cto",
        "hook": "order-sign",
        "hook_instance": str(uuid.uuid4()),
        "created_at": T0,
        "patient_ref": "Patient/p-1",
        "order_ref": "ServiceRequest/sr-1",
        "operator_ref": "Practitioner/dr-ñúñez",
        "index_date": date(2026, 2, 28),
        "inputs": {
            "age": {"value": 67, "source": "Patient.birthDate", "note": "at 2026-02-28"},
            "lesion_length_mm": {"value": 23.7, "source": "Observation/o-1 «CTO length ≥ 20 mm»"},
            "blunt_stump": {"value": None, "source": None, "note": "not recorded — assumed"},
        },
        "scores": {
            "operator_cto": {"points": 3, "probability": 0.1 + 0.2, "tiny": 5e-324},
            "j_cto": {"points": 2, "band": "difficult", "range": [1.0, 2.5]},
        },
        "card": {
            "uuid": card_uuid,
            "summary": "Operator-CTO 3 (success ≈ 71 %) – Dr Ñúñez 日本",
            "indicator": "info",
            "source": {"label": "Operator-CTO"},
            "links": [{"label": "Review", "url": "https://x/app", "type": "smart"}],
        },
        "mappings_version": "mappings/codes.csv@3f2a,mappings/rules.yaml@9c1d",
    }
    fields.update(changes)
    return CardAuditIn(**fields)


def head_revisions() -> list[str]:
    """The newest revision(s) of the packaged migrations, as alembic reads them (what `HEAD` in
    cds/store/engine.py must equal)."""
    from alembic.script import ScriptDirectory

    return sorted(ScriptDirectory.from_config(alembic_config()).get_heads())
