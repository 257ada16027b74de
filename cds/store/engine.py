"""Engines and migrations for the store, without alembic.ini.

`migrate(url)` upgrades a database to the newest revision in `cds/store/migrations/` and is safe
to run from every replica at start-up: PostgreSQL serialises upgraders on an advisory lock, SQLite
on `BEGIN IMMEDIATE`, and an up-to-date database is left untouched. Supported URLs:
`sqlite+aiosqlite:///path` and `postgresql+asyncpg://...` (plain `sqlite:` / `postgresql:` get the
async driver).

A new revision, for developers: `alembic.command.revision(alembic_config(url), message=...,
autogenerate=True)` against a database at head, then set `HEAD` to its id (a test compares it with
the migrations' head).

alembic is imported only when a database must be upgraded: reading the revision a database is at
is one SELECT, and importing alembic (it loads every SQLAlchemy dialect it supports) was ≈ 0.4 s of
every start-up — a replica's, whose database the migration Job has already upgraded, included
(docs/performance.md, "Cold start").
"""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, event, inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from cds.errors import ConfigError
from cds.text_checks import dumps_storable

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
HEAD = "0003"
"""The newest revision in MIGRATIONS (tests/store/test_migrations.py checks it is alembic's head)."""
VERSION_TABLE = "alembic_version"
ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}
PG_LOCK_KEY = 0x43544F5F434453  # "CTO_CDS": one advisory lock for schema upgrades
SQLITE_BUSY_SECONDS = 30.0
WAL_ATTEMPTS = 8
# While the database is down, requests beyond the pool (5 + 10 overflow) wait for a slot that no
# failed connect ever returns: bound that wait (and a connect) so they get their 503 within seconds.
POOL_TIMEOUT_SECONDS = 5.0
_WAL_LOCK = threading.Lock()


def _driver_errors() -> tuple[type[Exception], ...]:
    try:
        import asyncpg  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        return ()
    return (asyncpg.PostgresError, asyncpg.InterfaceError)


# What an unreachable or refusing database raises: SQLAlchemy's errors, and what asyncpg raises on
# connect without SQLAlchemy wrapping it (refused, unknown host, unknown role, bad password).
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    SQLAlchemyError,
    ConnectionError,
    TimeoutError,
    socket.gaierror,
    *_driver_errors(),
)


def database_url(url: str) -> URL:
    """The SQLAlchemy URL with its async driver; ConfigError (password hidden) when unsupported."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            "CTO_CDS_DATABASE_URL: not a database URL"
        ) from None  # never echo it: password
    wanted = ASYNC_DRIVERS.get(parsed.drivername)
    if wanted is None:
        shown = parsed.render_as_string(hide_password=True)
        raise ConfigError(
            f"CTO_CDS_DATABASE_URL: {shown} is not supported; use sqlite+aiosqlite:///path "
            "or postgresql+asyncpg://user@host/db"
        )
    return parsed.set(drivername=wanted)


def sqlite_path(url: URL) -> str | None:
    """The file behind a SQLite URL; None for in-memory databases and other backends."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return str(url.database)


def _enable_wal(path: str) -> None:
    """Put the SQLite file in WAL mode (readers do not wait for the writer), once, at engine creation.

    WAL is a property of the file, so later connections inherit it and never switch modes. Switching
    needs an exclusive lock that the busy timeout does not always wait for (`database is locked` seen
    with four replicas migrating at once), so it is serialised in this process and retried with
    backoff against other processes.
    """
    with _WAL_LOCK:
        for attempt in range(WAL_ATTEMPTS):
            try:
                with closing(sqlite3.connect(path, timeout=SQLITE_BUSY_SECONDS)) as connection:
                    if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                        connection.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == WAL_ATTEMPTS - 1:
                    raise ConfigError(
                        f"CTO_CDS_DATABASE_URL: cannot open the SQLite file {path}: {exc}"
                    ) from None
                time.sleep(0.05 * 2**attempt)


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    """`synchronous=NORMAL` on every connection to a WAL file: a commit no longer waits for an
    fsync (SQLite's own advice for WAL, https://www.sqlite.org/pragma.html#pragma_synchronous).
    A committed row survives a crash of the service; only a power cut can lose the last commits
    before a checkpoint, and the database stays consistent either way."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def create_engine(url: str) -> AsyncEngine:
    """An async engine for `url`; SQLite files get WAL and a generous busy timeout.

    `hide_parameters`: SQLAlchemy errors would otherwise print bound values (patient ids) into logs.
    `json_serializer`: NUL and lone surrogates in JSON become U+FFFD (cds/text_checks.py), so EHR
    text quoted in a card never makes its audit row unstorable.
    """
    parsed = database_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(parsed)
        if path is not None:
            _enable_wal(path)
        # A file gets one pooled connection: SQLite has one writer at a time anyway, and several
        # connections (one aiosqlite thread each) made concurrent writers meet SQLite's busy
        # handler, which sleeps in steps of milliseconds; now they queue for the connection.
        single = {"pool_size": 1, "max_overflow": 0, "pool_reset_on_return": None} if path else {}
        engine = create_async_engine(
            parsed,
            connect_args={"timeout": SQLITE_BUSY_SECONDS},
            hide_parameters=True,
            json_serializer=dumps_storable,
            pool_timeout=POOL_TIMEOUT_SECONDS,
            **single,
        )
        if path is not None:
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        parsed,
        connect_args={"timeout": POOL_TIMEOUT_SECONDS},
        pool_pre_ping=True,
        hide_parameters=True,
        json_serializer=dumps_storable,
        pool_timeout=POOL_TIMEOUT_SECONDS,
    )


def alembic_config(url: str | None = None) -> Config:
    """An in-memory alembic Config pointing at the packaged migrations."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        config.set_main_option("sqlalchemy.url", database_url(url).render_as_string(False))
    return config


def _upgrade(connection: Connection) -> None:
    # One transaction for the lock, the version check and every DDL statement. The lock comes
    # first, before alembic runs: besides serialising replicas it keeps two upgrades in one
    # process (one thread, alembic's module-global `context`/`op`) from interleaving.
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_LOCK_KEY})")
    elif connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    if _current(connection) == {HEAD}:
        return  # at head (checked under the lock): nothing to run, alembic not even imported
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _current(connection: Connection) -> set[str]:
    """The revisions the database is at (as alembic records them; none for a new database)."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return set()
    rows = connection.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}")
    return {row[0] for row in rows}


def _revisions(connection: Connection) -> tuple[set[str], set[str]]:
    return _current(connection), {HEAD}


async def upgrade(engine: AsyncEngine) -> None:
    """Upgrade the database behind `engine` to head (a no-op when it is there already)."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)


async def check_head(engine: AsyncEngine) -> None:
    """ConfigError unless the database is at the newest revision (for `migrate=False` starts)."""
    async with engine.connect() as connection:
        current, heads = await connection.run_sync(_revisions)
    if current != heads:
        raise ConfigError(
            f"CTO_CDS_DATABASE_URL: schema at revision {sorted(current) or 'none'}, this version needs "
            f"{sorted(heads)}: run the store migrations first"
        )


async def migrate(url: str) -> None:
    """Upgrade the database at `url` to head; safe to call twice or from several replicas."""
    engine = create_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


def _describe(exc: BaseException) -> str:
    """The driver's own message (no SQL, no bound values), first line, bounded."""
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).splitlines()[0] if str(cause) else ""
    return f"{type(cause).__name__}: {text[:200]}".rstrip(": ")


async def prepare(url: str) -> None:
    """Start-up check: reach the database at `url` and migrate it to head.

    Raises:
        ConfigError: naming CTO_CDS_DATABASE_URL: unsupported URL, unreachable server, unknown
            role, refused password, unwritable file (the password is never shown).
    """
    try:
        await migrate(url)
    except DATABASE_ERRORS as exc:
        shown = database_url(url).render_as_string(hide_password=True)
        raise ConfigError(
            f"CTO_CDS_DATABASE_URL: cannot use the database at {shown} ({_describe(exc)})"
        ) from None
