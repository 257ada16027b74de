"""The hot writes on PostgreSQL on a small asyncpg pool of the store's own: the jti insert as one
prepared statement in autocommit, and the card batches (audit rows and appContext handles, written
behind the response) as one transaction of `executemany`s.

Why: every authenticated call inserts its jti (CH-25). Through the engine that was four round trips
— the pool's pre-ping `SELECT 1`, `BEGIN`, the `INSERT`, `COMMIT` — with SQLAlchemy's async layer
around each: 1.1–1.5 ms of the worker's CPU and 1.7–2.3 ms of wall time per call against a local
server, where the same `INSERT … ON CONFLICT DO NOTHING RETURNING id` as an asyncpg prepared
statement in autocommit is 0.15 ms of CPU and 0.5 ms (docs/performance.md, "Two workers, and
PostgreSQL"). One statement is atomic on its own: the unique constraint still decides, across
processes and replicas, exactly as in the engine's transaction.

What keeps the engine path's behaviour:

* the same statement (the store's text, its `:name` parameters numbered for asyncpg) and values;
* a statement that certainly did not run — no connection (no server, a refused role, no pool) or
  an error the server reported for it (autocommit: nothing kept) — returns `UNAVAILABLE`, and the
  caller writes through the engine, which refuses, logs and counts a failure as before (the outage
  tests are unchanged); after any failure this path rests for `REST_SECONDS`, so an outage costs
  one failed attempt per interval, never one per call;
* a statement whose fate is unknown — the connection lost or the timeout reached after it was sent
  — may have inserted the jti: writing it again would read as a replay and refuse a genuine call.
  It is an `OperationalError` instead (503, as the engine's own lost connection is; the EHR
  retries with a new token);
* connecting and each statement are bounded (`CONNECT_TIMEOUT`, `STATEMENT_TIMEOUT`).

The card batches went through the engine too (pre-ping, `BEGIN`, one `executemany` per table,
`COMMIT`, SQLAlchemy's async layer around each). Here a batch that did not commit for certain —
refused, failed, or lost after it was sent — returns `UNAVAILABLE` and is written through the
engine: safe because both statements skip a row that is there already (`ON CONFLICT (card_uuid)`,
`ON CONFLICT (handle)`), so a batch that did commit before its connection was lost is found, not
written twice. Values go as the engine sends them (`bound_as`: JSON through the store's
serializer, instants as UTC), which tests/store/test_pg_direct.py compares column for column.

The URL's query parameters, `ssl=MODE` and `host=/socket/directory` (cds/store/engine.py), are
passed to the pool as the engine's dialect passes them to `asyncpg.connect`, so the direct path
connects exactly as the engine does: a hospital's PostgreSQL usually requires TLS, and such a URL
once kept the slow engine path for every jti.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Table
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError

from cds.store.models import as_utc, column_converters
from cds.store.sqlite_direct import UNAVAILABLE, Unavailable

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 2.0
STATEMENT_TIMEOUT = 5.0
REST_SECONDS = 5.0

_PARAMETER = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)")


def numbered(sql: str, order: Sequence[str]) -> str:
    """`sql` with each `:name` parameter replaced by asyncpg's `$n`, n its place in `order`."""
    place = {name: f"${n}" for n, name in enumerate(order, start=1)}
    return _PARAMETER.sub(lambda m: place[m[1]], sql)


class DirectTarget(NamedTuple):
    """Where the direct pool connects: asyncpg's DSN, the URL's `ssl` mode and its `host=` socket
    directory (None: asyncpg's default, as for the engine)."""

    dsn: str
    ssl: str | None = None
    host: str | None = None

    def connect_args(self) -> dict[str, str]:
        """What the engine's dialect passes to `asyncpg.connect` from the URL's query."""
        return {k: v for k, v in (("ssl", self.ssl), ("host", self.host)) if v is not None}


def direct_target(url: URL) -> DirectTarget | None:
    """Where the direct path connects for a PostgreSQL `url`; None when it does not apply (another
    database, or a query parameter the engine does not take: cds/store/engine.py)."""
    if url.get_backend_name() != "postgresql" or set(url.query) - {"ssl", "host"}:
        return None
    ssl, host = url.query.get("ssl"), url.query.get("host")
    if not isinstance(ssl, str | None) or not isinstance(host, str | None):
        return None  # `?ssl=a&ssl=b`: the engine refuses it
    dsn = url.set(drivername="postgresql", query={}).render_as_string(hide_password=False)
    return DirectTarget(dsn, ssl, host)


class PgDirect:
    """Single statements in autocommit on a pool of at most `max_size` connections (the process's
    share of them: `engine.connection_budget`), opened at first use."""

    def __init__(
        self,
        target: DirectTarget,
        max_size: int = 4,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._target = target
        self._max_size = max_size
        self._clock = clock
        self._pool: Any = None
        self._opening = asyncio.Lock()
        self._resting_until = float("-inf")

    async def fetchval(self, sql: str, *args: object) -> object | Unavailable:
        """The first column of the first row `sql` returns (None for no row), or UNAVAILABLE."""
        import asyncpg  # type: ignore[import-untyped]  # the [postgres] extra

        if self._clock() < self._resting_until:
            return UNAVAILABLE
        try:
            pool = self._pool or await self._open()
            connection = await pool.acquire(timeout=CONNECT_TIMEOUT)
        except Exception as exc:  # nothing was sent: the engine path decides (module docstring)
            return self._not_done(exc)
        try:
            value: object = await connection.fetchval(sql, *args, timeout=STATEMENT_TIMEOUT)
            return value
        except asyncpg.PostgresError as exc:  # the server refused it: nothing was kept
            return self._not_done(exc)
        except Exception as exc:  # sent, fate unknown: never written twice (module docstring)
            self._not_done(exc)
            raise OperationalError("direct INSERT", None, exc) from exc
        finally:
            await pool.release(connection)

    async def write_batches(
        self, batches: Sequence[tuple[str, Sequence[Sequence[object]]]]
    ) -> Unavailable | None:
        """Each `(sql, rows)` as one `executemany`, all in one transaction; UNAVAILABLE unless it
        committed. Only for statements that skip rows already there (module docstring): the
        caller writes an UNAVAILABLE batch again through the engine."""
        if self._clock() < self._resting_until:
            return UNAVAILABLE
        try:
            pool = self._pool or await self._open()
            connection = await pool.acquire(timeout=CONNECT_TIMEOUT)
        except Exception as exc:
            return self._not_done(exc)
        try:
            async with connection.transaction():
                for sql, rows in batches:
                    if rows:
                        await connection.executemany(sql, rows, timeout=STATEMENT_TIMEOUT)
        except Exception as exc:  # refused, failed or lost: the engine writes it (idempotent)
            return self._not_done(exc)
        finally:
            await pool.release(connection)
        return None

    def _not_done(self, exc: BaseException) -> Unavailable:
        self._resting_until = self._clock() + REST_SECONDS
        log.debug("store: direct PostgreSQL write not done (%s)", type(exc).__name__)
        return UNAVAILABLE

    async def _open(self) -> Any:
        import asyncpg

        async with self._opening:
            if self._pool is None:
                # Only what the URL sets: asyncpg's own defaults otherwise, as for the engine.
                self._pool = await asyncpg.create_pool(
                    self._target.dsn,
                    **self._target.connect_args(),
                    min_size=1,
                    max_size=self._max_size,
                    timeout=CONNECT_TIMEOUT,
                    command_timeout=STATEMENT_TIMEOUT,
                )
        return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


def bound_as(
    table: Table,
) -> tuple[tuple[str, ...], Callable[[Mapping[str, Any]], tuple[Any, ...]]]:
    """`table`'s columns but `id`, in order, and a row's values for asyncpg as the engine binds
    them on PostgreSQL: JSON as the store's serializer writes it, instants in UTC."""
    convert = column_converters(table, instant=as_utc)

    def bind(row: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(row[name] if to is None else to(row[name]) for name, to in convert)

    return tuple(name for name, _ in convert), bind
