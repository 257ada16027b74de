"""On PostgreSQL the jti insert is one prepared statement on the store's own asyncpg pool
(cds/store/pg_direct.py): it must agree with the engine path row for row; what certainly did not
run is written through the engine, with an outage costing one attempt per rest, not per call; what
may have run is a database error, never written twice. The card batches go the same way, and
whatever did not commit for certain is written again through the engine, harmlessly."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError

from cds.store import Store
from cds.store.pg_direct import REST_SECONDS, DirectTarget, PgDirect, direct_target, numbered
from cds.store.sqlite_direct import UNAVAILABLE
from tests.store.conftest import PG_ENV, T0, card_audit, fresh_postgres

pytestmark = pytest.mark.anyio

EXPIRES = T0 + timedelta(days=3650)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def pg_store() -> AsyncIterator[Store]:
    if not os.environ.get(PG_ENV):
        pytest.skip(f"set {PG_ENV}")  # .ci/run sets it
    async with fresh_postgres() as url, await Store.open(url) as store:
        yield store


class Calls:
    """Records each answer of the direct path."""

    def __init__(self, direct: PgDirect) -> None:
        self.answers: list[object] = []
        inner = direct.fetchval

        async def counted(sql: str, *args: object) -> object:
            answer = await inner(sql, *args)
            self.answers.append(answer)
            return answer

        direct.fetchval = counted  # type: ignore[method-assign]


async def _rows(store: Store) -> list[tuple[str, str, object]]:
    async with store._engine.connect() as conn:
        result = await conn.execute(text("SELECT iss, jti, expires_at FROM seen_jti ORDER BY id"))
        return [tuple(row) for row in result]


async def test_the_jti_insert_takes_the_direct_path_and_agrees_with_the_engine(
    pg_store: Store,
) -> None:
    assert pg_store._pg is not None
    calls = Calls(pg_store._pg)
    assert await pg_store.remember("iss", "jti-1", EXPIRES) is True
    assert await pg_store.remember("iss", "jti-1", EXPIRES) is False  # a replay, refused directly
    assert len(calls.answers) == 2
    assert UNAVAILABLE not in calls.answers
    # The engine path sees the direct path's row, and the direct path the engine's.
    pg_store._pg._resting_until = float("inf")
    assert await pg_store.remember("iss", "jti-1", EXPIRES) is False
    assert await pg_store.remember("iss", "jti-2", EXPIRES) is True
    pg_store._pg._resting_until = float("-inf")
    assert await pg_store.remember("iss", "jti-2", EXPIRES) is False
    assert await pg_store.remember("other-iss", "jti-2", EXPIRES) is True
    assert await _rows(pg_store) == [
        ("iss", "jti-1", EXPIRES),
        ("iss", "jti-2", EXPIRES),
        ("other-iss", "jti-2", EXPIRES),
    ]


async def test_a_failing_direct_path_falls_back_and_rests(pg_store: Store) -> None:
    now = [0.0]
    dead = PgDirect(DirectTarget("postgresql://postgres@127.0.0.1:1/nothing"), clock=lambda: now[0])
    pg_store._pg = dead
    opened = []
    inner_open = dead._open

    async def counted_open() -> object:
        opened.append(now[0])
        return await inner_open()

    dead._open = counted_open  # type: ignore[method-assign]
    assert await pg_store.remember("iss", "a", EXPIRES) is True  # through the engine
    assert await pg_store.remember("iss", "a", EXPIRES) is False
    assert await pg_store.remember("iss", "b", EXPIRES) is True
    assert opened == [0.0]  # one attempt, then resting
    now[0] = REST_SECONDS + 0.1
    assert await dead.fetchval("SELECT 1") is UNAVAILABLE
    assert opened == [0.0, REST_SECONDS + 0.1]
    assert [jti for _, jti, _ in await _rows(pg_store)] == ["a", "b"]


class FailingConnection:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def fetchval(self, sql: str, *args: object, timeout: float) -> object:
        raise self.error


class OneConnectionPool:
    def __init__(self, connection: FailingConnection) -> None:
        self.connection = connection
        self.acquired = 0
        self.released = 0

    async def acquire(self, timeout: float) -> FailingConnection:
        self.acquired += 1
        return self.connection

    async def release(self, connection: FailingConnection) -> None:
        self.released += 1

    async def close(self) -> None:
        pass


async def test_a_statement_of_unknown_fate_is_a_503_and_never_written_again(
    pg_store: Store,
) -> None:
    """Lost after it was sent, the INSERT may have kept the jti: writing it again through the
    engine would refuse a genuine call as a replay. The call gets a database error (503)."""
    assert pg_store._pg is not None
    pool = OneConnectionPool(FailingConnection(TimeoutError()))
    pg_store._pg._pool = pool
    with pytest.raises(OperationalError):
        await pg_store.remember("iss", "lost", EXPIRES)
    assert (pool.acquired, pool.released) == (1, 1)
    assert await _rows(pg_store) == []  # the engine did not write it
    assert await pg_store.remember("iss", "next", EXPIRES) is True  # resting: the engine writes
    assert pool.acquired == 1


async def test_an_error_the_server_reported_falls_back_to_the_engine(pg_store: Store) -> None:
    assert pg_store._pg is not None
    refused = asyncpg.exceptions.InsufficientPrivilegeError("permission denied for seen_jti")
    pool = OneConnectionPool(FailingConnection(refused))
    pg_store._pg._pool = pool
    assert await pg_store.remember("iss", "kept", EXPIRES) is True  # written by the engine
    assert (pool.acquired, pool.released) == (1, 1)
    assert [jti for _, jti, _ in await _rows(pg_store)] == ["kept"]


def test_postgresql_urls_take_the_direct_path_with_their_ssl_mode() -> None:
    plain = make_url("postgresql+asyncpg://cds:s3cret@db.example:5433/cds")
    assert direct_target(plain) == DirectTarget("postgresql://cds:s3cret@db.example:5433/cds")
    # The engine's one query parameter (cds/store/engine.py) goes to the pool, not into the DSN.
    tls = make_url("postgresql+asyncpg://cds@db/cds?ssl=verify-full")
    assert direct_target(tls) == DirectTarget("postgresql://cds@db/cds", "verify-full")
    socket = make_url("postgresql+asyncpg://cds@/cds?host=/run/postgresql&ssl=disable")
    assert direct_target(socket) == DirectTarget(
        "postgresql://cds@/cds", "disable", "/run/postgresql"
    )
    assert direct_target(make_url("postgresql+asyncpg://cds@db/cds?ssl=a&ssl=b")) is None
    assert direct_target(make_url("postgresql+asyncpg://cds@db/cds?other=1")) is None
    assert direct_target(make_url("sqlite+aiosqlite:///x.db")) is None


async def test_a_store_on_a_url_with_an_ssl_mode_writes_directly() -> None:
    if not os.environ.get(PG_ENV):
        pytest.skip(f"set {PG_ENV}")  # .ci/run sets it
    async with fresh_postgres() as url, await Store.open(url + "?ssl=disable") as store:
        assert store._pg is not None
        calls = Calls(store._pg)
        assert await store.remember("iss", "jti-1", EXPIRES) is True
        assert await store.remember("iss", "jti-1", EXPIRES) is False
        assert len(calls.answers) == 2
        assert UNAVAILABLE not in calls.answers


async def test_a_store_on_a_unix_socket_writes_directly() -> None:
    """`host=/socket/directory` reaches the engine and the direct pool alike (the socket the test
    server itself reports: PostgreSQL on the machine that runs the tests, as .ci/run uses it)."""
    if not os.environ.get(PG_ENV):
        pytest.skip(f"set {PG_ENV}")
    async with fresh_postgres() as url:
        tcp = make_url(url)
        server = await asyncpg.connect(tcp.set(drivername="postgresql").render_as_string(False))
        try:
            listed = await server.fetchval("SHOW unix_socket_directories")
        finally:
            await server.close()
        sockets = Path(str(listed).split(",")[0].strip())
        assert (sockets / f".s.PGSQL.{tcp.port or 5432}").exists(), f"no socket in {sockets}"
        local = URL.create(
            tcp.drivername,
            username=tcp.username,
            password=tcp.password,
            port=tcp.port,
            database=tcp.database,
            query={"host": str(sockets)},
        )
        async with await Store.open(local.render_as_string(hide_password=False)) as store:
            assert store._pg is not None
            calls = Calls(store._pg)
            assert await store.remember("iss", "jti-1", EXPIRES) is True
            assert await store.remember("iss", "jti-1", EXPIRES) is False
            assert calls.answers == [1, None]  # the row's id, then none: a replay


async def test_the_ssl_mode_decides_the_direct_connection_as_it_does_asyncpgs() -> None:
    """`require` is passed, not dropped: the direct pool connects exactly when asyncpg told the
    same mode does (this server may or may not offer TLS; without the mode both would connect)."""
    if not os.environ.get(PG_ENV):
        pytest.skip(f"set {PG_ENV}")
    async with fresh_postgres() as url:
        target = direct_target(make_url(url + "?ssl=require"))
        assert target is not None
        assert target.ssl == "require"
        try:
            await (await asyncpg.connect(target.dsn, ssl="require", timeout=5)).close()
            expected: object = 1
        except (OSError, asyncpg.PostgresError, ConnectionError):
            expected = UNAVAILABLE
        direct = PgDirect(target)
        try:
            assert await direct.fetchval("SELECT 1") == expected
        finally:
            await direct.close()


def test_named_parameters_are_numbered_in_the_given_order() -> None:
    sql = "INSERT INTO t (a, b, c) VALUES (:a, :b, :c) ON CONFLICT (a, b) DO NOTHING RETURNING id"
    assert numbered(sql, ("a", "b", "c")) == (
        "INSERT INTO t (a, b, c) VALUES ($1, $2, $3) ON CONFLICT (a, b) DO NOTHING RETURNING id"
    )


# --- the card batches ---------------------------------------------------------------------------


async def _card_rows(store: Store) -> list[tuple[object, ...]]:
    """Every stored column as PostgreSQL's text, but the ids, uuids and handles (they differ by
    design; the card's own uuid is masked)."""
    async with store._engine.connect() as conn:
        audits = await conn.execute(
            text(
                "SELECT service_id, hook, created_at::text, patient_ref, order_ref, operator_ref,"
                " index_date::text, inputs::text, scores::text,"
                " replace(card::text, card_uuid, '#'), mappings_version"
                " FROM card_audit ORDER BY id"
            )
        )
        handles = await conn.execute(
            text(
                "SELECT created_at::text, expires_at::text, state::text"
                " FROM app_context_handle ORDER BY id"
            )
        )
        return [tuple(row) for row in audits] + [tuple(row) for row in handles]


def _batch(store: Store, n: int) -> tuple[list[Any], list[dict[str, Any]]]:
    audits = [
        card_audit(f"card-{n}-{k}", scores={"x": {"p": float("nan"), "q": -0.0, "ñ": "日本"}})
        for k in range(2)
    ]
    handles = [
        store.new_handle(
            a.card_uuid, {"patient": "p-1", "ñ": [1.5, None]}, timedelta(hours=1), now=T0
        )
        for a in audits
    ]
    return audits, handles


async def test_card_batches_take_the_direct_path_and_agree_with_the_engine(
    pg_store: Store,
) -> None:
    assert pg_store._pg is not None
    answers: list[object] = []
    inner = pg_store._pg.write_batches

    async def counted(batches: Any) -> object:
        answers.append(await inner(batches))
        return answers[-1]

    pg_store._pg.write_batches = counted  # type: ignore[method-assign, assignment]
    await pg_store.save_cards(*_batch(pg_store, 1))  # direct
    assert answers == [None]
    direct_rows = await _card_rows(pg_store)
    pg_store._pg._resting_until = float("inf")  # the engine path
    await pg_store.save_cards(*_batch(pg_store, 2))
    assert answers == [None, UNAVAILABLE]
    both = await _card_rows(pg_store)
    assert len(direct_rows) == 4
    # Stored alike: audits 1-2 (direct) against 3-4 (engine), handles likewise.
    assert both[:2] == both[2:4]
    assert both[4:6] == both[6:8]
    assert both[:2] + both[4:6] == direct_rows
    stored = await pg_store.card("card-1-0")
    assert stored is not None
    assert stored.scores == {"x": {"p": None, "q": -0.0, "ñ": "日本"}}  # NaN as null, as sent


async def test_a_card_batch_that_may_have_committed_is_written_again_harmlessly(
    pg_store: Store,
) -> None:
    """The engine writes again what the direct path may have committed (its connection lost
    after COMMIT was sent): every row is found there, none doubled, no error."""
    assert pg_store._pg is not None
    audits, handles = _batch(pg_store, 3)
    await pg_store.save_cards(audits, handles)  # committed directly
    pg_store._pg._resting_until = float("inf")
    await pg_store.save_cards(audits, handles)  # "again", through the engine
    assert len(await _card_rows(pg_store)) == 4
    assert await pg_store.resolve_handle(handles[0]["handle"], now=T0) == {
        "patient": "p-1",
        "ñ": [1.5, None],
    }


async def test_a_card_batch_on_a_dead_direct_path_is_written_by_the_engine(
    pg_store: Store,
) -> None:
    now = [0.0]
    pg_store._pg = PgDirect(
        DirectTarget("postgresql://postgres@127.0.0.1:1/nothing"), clock=lambda: now[0]
    )
    audits, handles = _batch(pg_store, 4)
    await pg_store.save_cards(audits, handles)
    assert pg_store._pg._resting_until == REST_SECONDS  # tried once, now resting
    assert len(await _card_rows(pg_store)) == 4
    assert await pg_store.card("card-4-1") is not None
