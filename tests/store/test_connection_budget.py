"""A process's PostgreSQL connections stay within `CTO_CDS_DATABASE_MAX_CONNECTIONS`: replicas ×
workers × it is what a site counts against the server's `max_connections` (deploy/README.md)."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy.engine import make_url

from cds.http.state import build_state, load_static
from cds.settings import Settings
from cds.store import Store
from cds.store.engine import MAX_CONNECTIONS, connection_budget
from tests.store.conftest import PG_ENV, T0, card_audit, fresh_postgres

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize(
    ("total", "split"),
    [
        (MAX_CONNECTIONS, (5, 10, 4)),  # the split measured in docs/performance.md
        (2, (1, 1, 0)),  # no pool of its own: the jti insert goes through the engine
        (4, (1, 2, 1)),
        (12, (3, 6, 3)),
        (40, (12, 24, 4)),
    ],
)
def test_the_budget_is_shared_and_never_exceeded(total: int, split: tuple[int, int, int]) -> None:
    assert connection_budget(total) == split
    assert sum(split) == total


def test_a_budget_below_two_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        connection_budget(1)


async def _connections_to(url: str) -> int:
    admin = await asyncpg.connect(
        make_url(os.environ[PG_ENV]).set(drivername="postgresql").render_as_string(False)
    )
    try:
        database = make_url(url).database
        count = await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", database
        )
        return int(count)
    finally:
        await admin.close()


@pytest.mark.parametrize("total", [3, 6])
async def test_a_store_under_load_opens_at_most_its_budget(total: int) -> None:
    """Sixty concurrent jti inserts and card writes, with reads beside them: the store opens as many
    connections as the load asks for, never more than `total` (PostgreSQL counts them)."""
    if not os.environ.get(PG_ENV):
        pytest.skip(f"set {PG_ENV}")  # .ci/run sets it
    peak = 0
    async with fresh_postgres() as url, await Store.open(url, max_connections=total) as store:

        async def one(n: int) -> None:
            assert await store.remember("iss", f"jti-{n}", T0 + timedelta(days=3650))
            await store.save_card(card_audit(f"card-{n}"))
            assert await store.card(f"card-{n}") is not None

        async def watch() -> None:
            nonlocal peak
            while not done.is_set():  # never cancelled mid-query: its own connection closes cleanly
                peak = max(peak, await _connections_to(url))
                await asyncio.sleep(0.005)

        done = asyncio.Event()
        watcher = asyncio.create_task(watch())
        try:
            await asyncio.gather(*(one(n) for n in range(60)))
            peak = max(peak, await _connections_to(url))
        finally:
            done.set()
            await watcher
    assert 2 <= peak <= total


async def test_the_service_opens_its_store_with_the_setting() -> None:
    if not os.environ.get(PG_ENV):
        pytest.skip(f"set {PG_ENV}")
    async with fresh_postgres() as url:
        settings = Settings(database_url=url, database_max_connections=12)
        state = await build_state(settings, load_static(settings, trusted=[]))
        try:
            pool = state.store._engine.pool
            assert (pool.size(), pool._max_overflow) == (3, 6)  # type: ignore[attr-defined]
            assert state.store._pg is not None
            assert state.store._pg._max_size == 3
        finally:
            await state.close()
