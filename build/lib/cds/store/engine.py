"""Engines and migrations for the store, without alembic.ini.

`migrate(url)` upgrades a database to the newest revision in `cds/store/migrations/` and is safe
to run from every replica at start-up: PostgreSQL serialises upgraders on an advisory lock, SQLite
on `BEGIN IMMEDIATE`, and an up-to-date database is left untouched. Supported URLs:
`sqlite+aiosqlite:///path` and `postgresql+asyncpg://...` (plain `sqlite:` / `postgresql:` get the
async driver).

A new revision, for developers: `alembic.command.revision(alembic_config(url), message=...,
autogenerate=True)` against a database at head.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from cds.errors import ConfigError

MIGRATIONS = Path(__file__).parent / "migrations"
ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}
PG_LOCK_KEY = 0x43544F5F434453  # "CTO_CDS": one advisory lock for schema upgrades
SQLITE_BUSY_SECONDS = 30.0


def database_url(url: str) -> URL:
    """The SQLAlchemy URL with its async driver; ConfigError (password hidden) when unsupported."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError("database_url: not a database URL") from None  # never echo it: password
    wanted = ASYNC_DRIVERS.get(parsed.drivername)
    if wanted is None:
        shown = parsed.render_as_string(hide_password=True)
        raise ConfigError(
            f"database_url: {shown} is not supported; use sqlite+aiosqlite:///path "
            "or postgresql+asyncpg://user@host/db"
        )
    return parsed.set(drivername=wanted)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not wait for the writer
    cursor.close()


def create_engine(url: str) -> AsyncEngine:
    """An async engine for `url`; SQLite files get WAL and a generous busy timeout."""
    parsed = database_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_async_engine(parsed, connect_args={"timeout": SQLITE_BUSY_SECONDS})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(parsed, pool_pre_ping=True)


def alembic_config(url: str | None = None) -> Config:
    """An in-memory alembic Config pointing at the packaged migrations."""
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
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _revisions(connection: Connection) -> tuple[set[str], set[str]]:
    current = set(MigrationContext.configure(connection).get_current_heads())
    heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    return current, heads


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
            f"database_url: schema at revision {sorted(current) or 'none'}, this version needs "
            f"{sorted(heads)}: run the store migrations first"
        )


async def migrate(url: str) -> None:
    """Upgrade the database at `url` to head; safe to call twice or from several replicas."""
    engine = create_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
