"""Engines and migrations for the store, without alembic.ini.

`migrate(url)` upgrades a database to the newest revision in `cds/store/migrations/` and is safe
to run from every replica at start-up: PostgreSQL serialises upgraders on an advisory lock, SQLite
on `BEGIN IMMEDIATE`, and an up-to-date database is left untouched. Supported URLs:
`sqlite+aiosqlite:///path` and `postgresql+asyncpg://...` (plain `sqlite:` / `postgresql:` get the
async driver); the only query parameter is PostgreSQL's `ssl=MODE` (libpq's `sslmode` is read as it).

A new revision, for developers: `alembic.command.revision(alembic_config(url), message=...,
autogenerate=True)` against a database at head, then set `HEAD` to its id (a test compares it with
the migrations' head).

alembic is imported only when a database must be upgraded: reading the revision a database is at
is one SELECT, and importing alembic (it loads every SQLAlchemy dialect it supports) was ≈ 0.4 s of
every start-up — a replica's, whose database the migration Job has already upgraded, included
(docs/performance.md, "Cold start").

A release runs on its own head and, during a rolling update or after a rollback, on a NEWER schema
that still admits it (`schema_compat.oldest_compatible`, set by the migrations): were only its own
head good enough, the migration Job of an upgrade would turn every replica of the running release
unready at once. Revisions are numbered (`0004`), so newer and older compare as text.
"""

from __future__ import annotations

import logging
import re
import socket
import sqlite3
import ssl
import threading
import time
from contextlib import closing
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, event, inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from cds.errors import ConfigError
from cds.text_checks import dumps_storable
from cds.urls import masked

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
HEAD = "0004"
"""The newest revision in MIGRATIONS (tests/store/test_migrations.py checks it is alembic's head)."""
VERSION_TABLE = "alembic_version"
COMPAT_TABLE = "schema_compat"
REVISION = re.compile(r"\d{4}")
"""Every revision's id (tests/store/test_migrations.py): four digits, one more than the last."""
ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}
PG_SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
"""asyncpg's `ssl` values in a URL, the same names as libpq's `sslmode` (which is translated)."""
PG_LOCK_KEY = 0x43544F5F434453  # "CTO_CDS": one advisory lock for schema upgrades
SQLITE_BUSY_SECONDS = 30.0
WAL_ATTEMPTS = 8
# While the database is down, requests beyond the pool (by default 5 + 10 overflow) wait for a
# slot that no failed connect ever returns: bound that wait (and a connect) so they get their 503
# within seconds.
POOL_TIMEOUT_SECONDS = 5.0
MAX_CONNECTIONS = 19
"""A process's PostgreSQL connections by default (`CTO_CDS_DATABASE_MAX_CONNECTIONS`): the
engine's 5 + 10 overflow and the hot writes' 4 (`connection_budget`)."""
_WAL_LOCK = threading.Lock()
log = logging.getLogger("cds.store")


def _driver_errors() -> tuple[type[Exception], ...]:
    try:
        import asyncpg  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        return ()
    return (asyncpg.PostgresError, asyncpg.InterfaceError)


# What an unreachable or refusing database raises: SQLAlchemy's errors, and what asyncpg raises on
# connect without SQLAlchemy wrapping it (refused, unknown host, unknown role, bad password, a TLS
# handshake that failed: an expired or untrusted server certificate under `ssl=verify-full`).
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    SQLAlchemyError,
    ConnectionError,
    TimeoutError,
    socket.gaierror,
    ssl.SSLError,
    *_driver_errors(),
)
START_ERRORS: tuple[type[Exception], ...] = (*DATABASE_ERRORS, OSError)
"""What reaching the database at start-up can raise: asyncpg also reads TLS files itself for
`ssl=verify-ca`/`verify-full` (PGSSLROOTCERT, PGSSLCERT, PGSSLKEY, ~/.postgresql/), and a missing
or unreadable one was a traceback (FileNotFoundError, IsADirectoryError, PermissionError)."""


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
        raise ConfigError(
            f"CTO_CDS_DATABASE_URL: {masked(url)} is not supported; use sqlite+aiosqlite:///path "
            "or postgresql+asyncpg://user@host/db"
        )
    parsed = parsed.set(drivername=wanted)
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        # Not merely unpooled (a TypeError traceback): `serve` migrates it on a connection it then
        # closes, each worker would hold its own, and the jti replay records and audit die with it.
        raise ConfigError(
            "CTO_CDS_DATABASE_URL: an in-memory SQLite database is not supported (each process "
            "would have its own, lost at exit with the replay records and the audit); "
            "name a file: sqlite+aiosqlite:///path"
        )
    return parsed.set(query=_query(parsed))


def _query(parsed: URL) -> dict[str, str]:
    """The URL's query as the driver accepts it. SQLAlchemy passes every parameter to the driver's
    connect(), so an unknown one (libpq's `sslmode` included) was a TypeError at the first connect;
    the message names parameters, never their values."""
    query: dict[str, str] = {}
    for name, value in parsed.query.items():
        if not isinstance(value, str):
            raise ConfigError(f"CTO_CDS_DATABASE_URL: query parameter {name!r} is given twice")
        query[name] = value
    if parsed.get_backend_name() == "sqlite":
        if query:
            raise ConfigError(
                f"CTO_CDS_DATABASE_URL: unknown query parameter {sorted(query)[0]!r}: "
                "a SQLite URL takes none (sqlite+aiosqlite:///path)"
            )
        return {}
    if "sslmode" in query:
        if "ssl" in query:
            raise ConfigError("CTO_CDS_DATABASE_URL: set ssl or sslmode, not both")
        # libpq's name, usual in PostgreSQL URLs; asyncpg's `ssl` takes the same modes.
        query["ssl"] = query.pop("sslmode")
    unknown = sorted(set(query) - {"ssl", "host"})
    if unknown:
        raise ConfigError(
            f"CTO_CDS_DATABASE_URL: unknown query parameter {unknown[0]!r}: only ssl=MODE "
            f"(or libpq's sslmode=MODE), MODE one of {', '.join(PG_SSL_MODES)}, and "
            "host=/socket/directory are accepted"
        )
    if "host" in query:
        # A Unix-socket directory, as libpq's `host=`: a server on the same machine, a Cloud SQL
        # Auth Proxy or a PgBouncer (session mode) on a socket. A network host goes in the URL:
        # one place for it, so the URL shown in messages says where the service connects.
        if not query["host"].startswith("/"):
            raise ConfigError(
                "CTO_CDS_DATABASE_URL: host= must be a Unix-socket directory (an absolute path); "
                "a network host goes in the URL (user@host:port/db)"
            )
        if parsed.host:
            raise ConfigError(
                "CTO_CDS_DATABASE_URL: set the host in the URL or host=/socket/directory, not both"
            )
    if "ssl" in query and query["ssl"] not in PG_SSL_MODES:
        raise ConfigError(f"CTO_CDS_DATABASE_URL: ssl must be one of {', '.join(PG_SSL_MODES)}")
    return query


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
            except sqlite3.DatabaseError as exc:  # OperationalError, or not a database at all
                locked = isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)
                if not locked or attempt == WAL_ATTEMPTS - 1:
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


def connection_budget(total: int) -> tuple[int, int, int]:
    """How a process's `total` PostgreSQL connections are shared: (the engine's pool size, its
    overflow, the hot writes' own pool: cds/store/pg_direct.py).

    The hot writes hold a connection for one statement each, so a quarter, at most 4, is plenty;
    none below 4 in all (the jti insert then goes through the engine). The engine keeps a third of
    the rest open and opens the others only under load. The default 19 gives 5, 10 and 4, the
    split measured in docs/performance.md.
    """
    if total < 2:
        raise ValueError(f"{total} PostgreSQL connections: at least 2 are needed")
    direct = min(4, total // 4)
    size = max(1, (total - direct) // 3)
    return size, total - direct - size, direct


def create_engine(url: str, max_connections: int = MAX_CONNECTIONS) -> AsyncEngine:
    """An async engine for `url`; SQLite files get WAL and a generous busy timeout; PostgreSQL
    gets the engine's share of `max_connections` (`connection_budget`).

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
    size, overflow, _ = connection_budget(max_connections)
    return create_async_engine(
        parsed,
        connect_args={"timeout": POOL_TIMEOUT_SECONDS},
        pool_size=size,
        max_overflow=overflow,
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


class Fit(Enum):
    """How this release stands to the schema it finds."""

    HEAD = "at head"
    NEWER = "newer, admits this release"  # a rolling update's old replicas, a rollback
    BEHIND = "behind"  # an upgrade brings it to head
    REFUSED = "refused"  # newer and no longer admitting this release, or not one of ours


def _fit(connection: Connection) -> tuple[Fit, str]:
    """This release's fit to the database's schema, and what to tell the operator (revisions only)."""
    current = sorted(_current(connection))
    if current == [HEAD]:
        return Fit.HEAD, f"schema at {HEAD} (head)"
    if not current or (len(current) == 1 and REVISION.fullmatch(current[0]) and current[0] < HEAD):
        return Fit.BEHIND, (
            f"schema at revision {current or 'none'}, this version needs {[HEAD]}: "
            "run the store migrations first"
        )
    if len(current) != 1 or not REVISION.fullmatch(current[0]):
        return (
            Fit.REFUSED,
            f"schema at revision {current}, which is not one of cto-cds's migrations",
        )
    oldest = _oldest_compatible(connection)
    if oldest is not None and REVISION.fullmatch(oldest) and oldest <= HEAD:
        return Fit.NEWER, (
            f"schema at revision {current[0]}, newer than this version's {HEAD} and admitting "
            f"releases from {oldest} on"
        )
    return Fit.REFUSED, (
        f"schema at revision {current[0]} admits only releases from {oldest or '(unknown)'} on, "
        f"this version is at {HEAD}: deploy a newer release"
    )


def _oldest_compatible(connection: Connection) -> str | None:
    if not inspect(connection).has_table(COMPAT_TABLE):
        return None
    rows = connection.exec_driver_sql(f"SELECT oldest_compatible FROM {COMPAT_TABLE}").all()
    return str(rows[0][0]) if len(rows) == 1 else None


def _upgrade(connection: Connection) -> tuple[Fit, str]:
    # One transaction for the lock, the version check and every DDL statement. The lock comes
    # first, before alembic runs: besides serialising replicas it keeps two upgrades in one
    # process (one thread, alembic's module-global `context`/`op`) from interleaving.
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_LOCK_KEY})")
    elif connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    fit, why = _fit(connection)
    if fit is not Fit.BEHIND:
        return fit, why  # at head or newer (checked under the lock): alembic not even imported
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
    return Fit.HEAD, f"schema at {HEAD} (head)"


def _current(connection: Connection) -> set[str]:
    """The revisions the database is at (as alembic records them; none for a new database)."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return set()
    rows = connection.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}")
    return {row[0] for row in rows}


def _usable(fit: Fit, why: str) -> None:
    """ConfigError unless this release may run on the schema; running on a newer one is logged."""
    if fit in (Fit.BEHIND, Fit.REFUSED):
        raise ConfigError(f"CTO_CDS_DATABASE_URL: {why}")
    if fit is Fit.NEWER:
        log.warning("store: %s: running on it (a rolling update or a rollback)", why)


async def upgrade(engine: AsyncEngine) -> str:
    """Upgrade the database behind `engine` to head (a no-op when it is there already, or at a
    newer revision that admits this release) and say where it stands; ConfigError when a newer
    one does not admit this release."""
    async with engine.begin() as connection:
        fit, why = await connection.run_sync(_upgrade)
    _usable(fit, why)
    return why


async def schema_fit(engine: AsyncEngine) -> tuple[Fit, str]:
    """How this release stands to the schema behind `engine` (one or two SELECTs, no alembic)."""
    async with engine.connect() as connection:
        return await connection.run_sync(_fit)


async def check_schema(engine: AsyncEngine) -> None:
    """ConfigError unless this release may run on the schema as it is (for `migrate=False` starts):
    at head, or newer and admitting it."""
    _usable(*await schema_fit(engine))


async def migrate(url: str) -> str:
    """Upgrade the database at `url` to head (`upgrade`); safe to call twice or from several
    replicas. Returns where the schema stands."""
    engine = create_engine(url)
    try:
        return await upgrade(engine)
    finally:
        await engine.dispose()


def describe(exc: BaseException) -> str:
    """The driver's own message (no SQL, no bound values), first line, bounded."""
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).splitlines()[0] if str(cause) else ""
    described = f"{type(cause).__name__}: {text[:200]}".rstrip(": ")
    if _tls_file_error(cause):  # the error says neither which file nor why asyncpg read it
        described += "; reading a TLS file (PGSSLROOTCERT, PGSSLCERT, PGSSLKEY or ~/.postgresql/)"
    return described


def _tls_file_error(exc: BaseException) -> bool:
    """A file asyncpg reads for `ssl=` is missing or not a certificate (not a failed handshake)."""
    if isinstance(exc, ssl.SSLError):
        return exc.library in ("X509", "PEM")
    return isinstance(exc, OSError) and not isinstance(exc, DATABASE_ERRORS)


async def prepare(url: str) -> str:
    """Start-up check: reach the database at `url` and migrate it to head (`upgrade`); returns
    where the schema stands.

    Raises:
        ConfigError: naming CTO_CDS_DATABASE_URL: unsupported URL, unreachable server, unknown
            role, refused password, unwritable file (the password is never shown), a newer schema
            that no longer admits this release.
    """
    try:
        return await migrate(url)
    except START_ERRORS as exc:
        raise ConfigError(
            f"CTO_CDS_DATABASE_URL: cannot use the database at {masked(url)} ({describe(exc)})"
        ) from None
