"""The SMART app's Save slot in the database: one holder per session across replicas, with expiry
and release by holder only (SQLite, and PostgreSQL when CTO_CDS_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from cds.store import Store
from tests.store.conftest import T0, Clock

pytestmark = pytest.mark.anyio
TTL = timedelta(minutes=3)
KEY = "a" * 64


async def test_one_holder_at_a_time_and_release_by_holder_only(store: Store) -> None:
    assert await store.acquire_save_lock(KEY, "h1", TTL, T0)
    assert not await store.acquire_save_lock(KEY, "h2", TTL, T0)
    assert not await store.acquire_save_lock(KEY, "h1", TTL, T0), "not re-entrant"
    assert await store.acquire_save_lock("b" * 64, "h2", TTL, T0), "another session is free"
    assert not await store.release_save_lock(KEY, "h2")
    assert not await store.acquire_save_lock(KEY, "h3", TTL, T0), "a wrong release freed nothing"
    assert await store.release_save_lock(KEY, "h1")
    assert not await store.release_save_lock(KEY, "h1"), "released once"
    assert await store.acquire_save_lock(KEY, "h3", TTL, T0)


async def test_an_expired_lock_is_taken_over_and_its_old_holder_cannot_release_it(
    store: Store,
) -> None:
    assert await store.acquire_save_lock(KEY, "dead", TTL, T0)
    assert not await store.acquire_save_lock(KEY, "h2", TTL, T0 + TTL - timedelta(seconds=1))
    assert await store.acquire_save_lock(KEY, "h2", TTL, T0 + TTL)
    assert not await store.release_save_lock(KEY, "dead")
    assert not await store.acquire_save_lock(KEY, "h3", TTL, T0 + TTL), "h2 still holds it"


async def test_prune_drops_expired_locks(store: Store) -> None:
    assert await store.acquire_save_lock(KEY, "dead", TTL, T0)
    await store.prune_app_sessions(T0 + TTL - timedelta(seconds=1))
    assert not await store.release_save_lock(KEY, "other")
    assert not await store.acquire_save_lock(KEY, "h2", TTL, T0), "kept while live"
    await store.prune_app_sessions(T0 + TTL)
    assert not await store.release_save_lock(KEY, "dead"), "pruned"


async def test_ttl_must_be_positive(store: Store) -> None:
    with pytest.raises(ValueError, match="ttl must be positive"):
        await store.acquire_save_lock(KEY, "h", timedelta(0), T0)


async def test_two_replicas_racing_for_one_session_get_one_lock(
    database_url: str, clock: Clock
) -> None:
    """Two Store instances (two processes' engines) on one database, twenty concurrent tries."""
    async with (
        await Store.open(database_url, clock=clock) as one,
        await Store.open(database_url, migrate=False, clock=clock) as two,
    ):
        tries = [
            (one if i % 2 else two).acquire_save_lock(KEY, f"h{i}", TTL, T0) for i in range(20)
        ]
        won = await asyncio.gather(*tries)
    assert won.count(True) == 1
