"""The two hot writes on a SQLite file without leaving the event loop: the jti insert (every
authenticated call, CH-25) and the card-audit batches with their appContext handles (CH-16, SM-08).

Why: aiosqlite runs each statement on its own thread, so one transaction (BEGIN, INSERT, COMMIT)
is several hand-offs between that thread and the event loop, each a queue put, a wake-up and a
callback: ≈ 0.85 ms of CPU per transaction whatever its size, 1.3–2 ms per order-select call for
the jti alone (docs/performance.md). The SQLite work itself is a few tens of µs: in WAL mode with
`synchronous=NORMAL` a commit is a write() to the WAL file, no fsync. So these writes run here, in
the calling (event-loop) thread, on a second, synchronous connection to the same file, as raw
statements: the jti insert, three plain values (0.05 ms of CPU instead of Core's 0.15), and the
card batches, one `executemany` per table with each value first written as the async engine
stores it (`stored_as`: UTC instants as naive UTC text, dates as ISO text, JSON through the store's
serializer); tests/store/test_sqlite_direct.py compares the files the two paths write, byte for
byte. SQLAlchemy's sync Core did the same batches for ≈ 3 % of an order-select call's CPU more.

What keeps the event loop from ever waiting here:

* no lock waits: the busy timeout is 0. A write that finds the file locked (another replica, or the
  async connection inside a transaction) is not attempted here: `attempt` returns `UNAVAILABLE` and
  the caller writes the usual way on the async engine, which waits for its turn off the loop;
* no fsync: this connection never checkpoints (`wal_autocheckpoint=0`); `checkpoint_due()` tells
  the store when to run a PASSIVE checkpoint on the async engine's thread instead;
* any other database error also returns `UNAVAILABLE` (after a rollback), so an outage takes the
  async path and is refused, logged and counted exactly as it was before this fast path existed.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import Table

from cds.store.models import as_utc, column_converters

log = logging.getLogger(__name__)

T = TypeVar("T")
CHECKPOINT_EVERY = 100
"""Direct commits between two PASSIVE checkpoints: ≤ ~100 cards' rows (≈ 3.5 MB of WAL with the
audit JSON), about SQLite's own default of 1,000 pages."""


class Unavailable:
    """The direct path did not write (locked, failing or in use): write on the async engine."""

    def __repr__(self) -> str:
        return "UNAVAILABLE"


UNAVAILABLE = Unavailable()


class DirectWrites:
    """A synchronous connection to a WAL-mode SQLite file for short writes in the calling thread."""

    def __init__(self, path: str, checkpoint_every: int = CHECKPOINT_EVERY) -> None:
        # One connection, used raw: Core's per-statement work was most of these writes' CPU.
        self._raw = sqlite3.connect(path, timeout=0, check_same_thread=False)
        self._raw.execute("PRAGMA synchronous=NORMAL")  # as the async engine's connections
        self._raw.execute("PRAGMA wal_autocheckpoint=0")  # never an fsync in the event loop
        # One writer at a time on the connection (a second event loop in another thread, in
        # tests): whoever finds it taken writes on the async engine instead of waiting.
        self._in_use = threading.Lock()
        self._checkpoint_every = checkpoint_every
        self._commits = 0

    def attempt_sql(self, sql: str, parameters: Mapping[str, object]) -> list[Any] | Unavailable:
        """One statement on the raw connection, committed; its rows (e.g. `RETURNING`), or
        `UNAVAILABLE` when it could not run or failed (rolled back: nothing of it was written).
        Values are bound as given: the caller formats them as the async engine would store them."""

        def raw() -> list[Any]:
            try:
                rows = self._raw.execute(sql, parameters).fetchall()
                self._raw.commit()
            except BaseException:
                self._raw.rollback()
                raise
            return rows

        return self._attempt(raw)

    def attempt_many(
        self, batches: Sequence[tuple[str, Sequence[Mapping[str, object]]]]
    ) -> Unavailable | None:
        """Each `(sql, rows)` as one `executemany` on the raw connection, all in one transaction,
        committed; `UNAVAILABLE` as for `attempt_sql`.
        Values are bound as given: `stored_as` formats them as the async engine would."""

        def raw() -> None:
            try:
                for sql, rows in batches:
                    if rows:
                        self._raw.executemany(sql, rows)
                self._raw.commit()
            except BaseException:
                self._raw.rollback()
                raise

        return self._attempt(raw)

    def _attempt(self, write: Callable[[], T]) -> T | Unavailable:
        if not self._in_use.acquire(blocking=False):
            return UNAVAILABLE
        try:
            result = write()
        except sqlite3.Error as exc:
            # Expected under contention ("database is locked"); anything else is the async
            # path's to report. The class only: a message can carry bound values.
            log.debug("store: direct SQLite write not done (%s)", type(exc).__name__)
            return UNAVAILABLE
        finally:
            self._in_use.release()
        self._commits += 1
        return result

    def checkpoint_due(self) -> bool:
        """True once every `checkpoint_every` direct commits (the caller then checkpoints)."""
        if self._commits < self._checkpoint_every:
            return False
        self._commits = 0
        return True

    def close(self) -> None:
        self._raw.close()


def _stored_instant(value: datetime) -> str:
    return as_utc(value).replace(tzinfo=None).isoformat(" ", "microseconds")  # `UTCDateTime`


def stored_as(table: Table) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """A row of `table` with each value as the async engine stores it on SQLite (see the module
    docstring): UTC instants as naive UTC text with microseconds, dates as ISO text
    (SQLAlchemy's SQLite `Date`), JSON as the store's serializer writes it."""
    convert = [
        (name, to)
        for name, to in column_converters(table, instant=_stored_instant, day=date.isoformat)
        if to is not None
    ]

    def bind(row: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(row)
        for name, to in convert:
            if name in out:
                out[name] = to(out[name])
        return out

    return bind
