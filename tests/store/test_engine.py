"""Engine set-up: WAL set once under contention, bound parameters never in error messages."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from cds.errors import ConfigError
from cds.store.engine import create_engine, database_url, prepare

pytestmark = pytest.mark.anyio


def journal_mode(path: Path) -> str:
    with sqlite3.connect(path) as connection:
        return str(connection.execute("PRAGMA journal_mode").fetchone()[0])


def test_wal_is_set_at_creation_even_while_another_writer_holds_the_file(tmp_path: Path) -> None:
    # `database is locked` at PRAGMA journal_mode=WAL failed a replica start once in ~42 runs:
    # reproduce it deterministically with a writer holding the file's lock.
    path = tmp_path / "busy.db"
    sqlite3.connect(path).close()
    holder = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")

    def release() -> None:
        time.sleep(0.4)
        holder.execute("COMMIT")

    thread = threading.Thread(target=release)
    thread.start()
    try:
        create_engine(f"sqlite+aiosqlite:///{path}")
    finally:
        thread.join()
        holder.close()
    assert journal_mode(path) == "wal"


async def test_bound_parameters_never_reach_error_messages(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}")
    try:
        async with engine.connect() as connection:
            with pytest.raises(SQLAlchemyError) as failed:
                await connection.execute(
                    text("SELECT * FROM no_such_table WHERE id = :pid"), {"pid": "pt-secret-04"}
                )
    finally:
        await engine.dispose()
    assert "pt-secret-04" not in str(failed.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://postgres@127.0.0.1:1/test",
        "mysql://u:s3cret@h/db",
        "sqlite+aiosqlite:////nonexistent-dir/cto.db",
    ],
)
async def test_prepare_names_the_setting_in_one_line(url: str) -> None:
    with pytest.raises(ConfigError) as refused:
        await prepare(url)
    message = str(refused.value)
    assert message.startswith("CTO_CDS_DATABASE_URL: ")
    assert "\n" not in message
    assert "s3cret" not in message


async def test_sqlite_connections_commit_without_waiting_for_fsync(tmp_path: Path) -> None:
    # WAL + synchronous=NORMAL: the jti insert and the audit no longer wait for the disk.
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 's.db'}")
    try:
        async with engine.connect() as connection:
            mode = (await connection.execute(text("PRAGMA synchronous"))).scalar()
            journal = (await connection.execute(text("PRAGMA journal_mode"))).scalar()
    finally:
        await engine.dispose()
    assert (mode, journal) == (1, "wal")  # 1 = NORMAL (2 = FULL, the default)


async def test_a_sqlite_file_has_one_connection_and_concurrent_writers_queue(
    tmp_path: Path,
) -> None:
    import asyncio
    from datetime import UTC, datetime, timedelta

    from cds.store.repository import Store

    url = f"sqlite+aiosqlite:///{tmp_path / 'one.db'}"
    async with await Store.open(url) as store:
        assert store._engine.pool.size() == 1  # type: ignore[attr-defined]
        expires = datetime.now(UTC) + timedelta(minutes=5)
        # 40 writers at once: they wait for the connection, not in SQLite's busy handler.
        new = await asyncio.gather(*(store.remember("iss", f"jti-{i}", expires) for i in range(40)))
        again = await store.remember("iss", "jti-7", expires)
    assert new == [True] * 40
    assert again is False


@pytest.mark.parametrize(
    ("query", "ssl"),
    [
        ("sslmode=require", "require"),
        ("ssl=verify-full", "verify-full"),
        ("sslmode=disable", "disable"),
    ],
)
def test_libpq_sslmode_becomes_asyncpgs_ssl(query: str, ssl: str) -> None:
    # asyncpg's connect() has no sslmode: it was a TypeError traceback at the first connect.
    engine = create_engine(f"postgresql+asyncpg://u:pw@127.0.0.1:1/db?{query}")
    try:
        _, kwargs = engine.dialect.create_connect_args(engine.url)
    finally:
        engine.sync_engine.dispose()
    assert kwargs["ssl"] == ssl
    assert "sslmode" not in kwargs


def test_a_unix_socket_directory_is_passed_as_asyncpgs_host() -> None:
    # A Cloud SQL Auth Proxy or PgBouncer sidecar on a socket: refused before ("unknown parameter").
    engine = create_engine("postgresql+asyncpg://u:pw@:5433/db?host=/cloudsql/p:r:i&ssl=disable")
    try:
        _, kwargs = engine.dialect.create_connect_args(engine.url)
    finally:
        engine.sync_engine.dispose()
    assert (kwargs["host"], kwargs["port"], kwargs["ssl"]) == ("/cloudsql/p:r:i", 5433, "disable")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql+asyncpg://u:pw@h/db?foo=bar", "unknown query parameter 'foo'"),
        ("postgresql+asyncpg://u:pw@h/db?sslmode=on", "ssl must be one of disable"),
        ("postgresql+asyncpg://u:pw@h/db?ssl=require&sslmode=require", "ssl or sslmode, not both"),
        ("postgresql+asyncpg://u:pw@h/db?ssl=require&ssl=disable", "'ssl' is given twice"),
        ("postgresql+asyncpg://u:pw@/db?host=db.example", "host= must be a Unix-socket directory"),
        ("postgresql+asyncpg://u:pw@h/db?host=/run/postgresql", "in the URL or host=/socket"),
        ("sqlite+aiosqlite:///cds.db?timeout=5", "unknown query parameter 'timeout'"),
    ],
)
def test_a_query_the_driver_would_refuse_is_named_in_one_line(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"^CTO_CDS_DATABASE_URL: .*{re.escape(message)}"):
        database_url(url)


@pytest.mark.parametrize(
    "url", ["sqlite+aiosqlite:///:memory:", "sqlite+aiosqlite://", "sqlite://"]
)
def test_an_in_memory_sqlite_database_is_refused_saying_why(url: str) -> None:
    # It was a TypeError (pool_timeout on a StaticPool); served, it would lose jti and audit rows.
    with pytest.raises(ConfigError, match=r"^CTO_CDS_DATABASE_URL: an in-memory SQLite database"):
        database_url(url)


def test_a_file_that_is_not_a_database_is_named_in_one_line(tmp_path: Path) -> None:
    # sqlite3.DatabaseError is not an OperationalError: it was a traceback.
    path = tmp_path / "notes.db"
    path.write_text("not a database, only some text long enough to hold a header\n" * 4)
    with pytest.raises(ConfigError) as refused:
        create_engine(f"sqlite+aiosqlite:///{path}")
    assert str(refused.value) == (
        f"CTO_CDS_DATABASE_URL: cannot open the SQLite file {path}: file is not a database"
    )
