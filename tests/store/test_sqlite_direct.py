"""The hot writes on a SQLite file go through a synchronous connection in the event loop
(cds/store/sqlite_direct.py): they must never wait there for a lock or an fsync, and whatever the
direct path cannot write is written the usual way, so nothing is lost or written twice."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cds.store import Store
from cds.store.sqlite_direct import UNAVAILABLE, DirectWrites
from tests.store.conftest import T0, Clock, card_audit

pytestmark = pytest.mark.anyio


@pytest.fixture
async def sqlite_store(tmp_path: Path, clock: Clock) -> AsyncIterator[Store]:
    async with await Store.open(
        f"sqlite+aiosqlite:///{tmp_path / 'store.db'}", clock=clock
    ) as store:
        yield store


@asynccontextmanager
async def _opened(path: Path, clock: Clock, *, direct: bool) -> AsyncIterator[Store]:
    """A store on `path`; `direct=False`: the async engine only, as before the direct path."""
    async with await Store.open(f"sqlite+aiosqlite:///{path}", clock=clock) as store:
        if not direct and store._direct is not None:
            store._direct.close()
            store._direct = None
        yield store


def _count(path: Path, table: str) -> int:
    with closing(sqlite3.connect(path)) as db:
        return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


async def test_the_hot_writes_take_the_direct_path_and_land_once(
    sqlite_store: Store, tmp_path: Path
) -> None:
    direct = sqlite_store._direct
    assert direct is not None
    before = direct._commits
    assert await sqlite_store.remember("iss", "j-1", T0 + timedelta(minutes=5)) is True
    assert await sqlite_store.remember("iss", "j-1", T0 + timedelta(minutes=5)) is False
    audit = card_audit()
    handle = sqlite_store.new_handle(audit.card_uuid, {"patient": "p-1"}, timedelta(hours=1))
    await sqlite_store.save_cards([audit, audit], [handle])
    assert direct._commits == before + 3  # two jti inserts and one batch, none via aiosqlite
    assert _count(tmp_path / "store.db", "seen_jti") == 1
    assert _count(tmp_path / "store.db", "card_audit") == 1
    # Read back through the async engine: the same types and JSON as if it had written them.
    stored = await sqlite_store.card(audit.card_uuid)
    assert stored is not None
    assert (stored.card, stored.inputs) == (audit.card, audit.inputs)
    assert await sqlite_store.resolve_handle(handle["handle"]) == {"patient": "p-1"}


async def test_a_locked_file_is_not_waited_for_in_the_loop_but_written_after(
    sqlite_store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "store.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock (a replica, a CLI)
    direct = sqlite_store._direct
    assert direct is not None
    assert direct.attempt_sql("DELETE FROM seen_jti", {}) is UNAVAILABLE

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def release_later() -> None:
        await asyncio.sleep(0.3)
        await asyncio.to_thread(holder.execute, "COMMIT")

    beat = asyncio.create_task(ticker())
    release = asyncio.create_task(release_later())
    # Falls back to the async engine, which waits for the lock off the event loop.
    assert await sqlite_store.remember("iss", "j-locked", T0 + timedelta(minutes=5)) is True
    await release
    beat.cancel()
    holder.close()
    assert ticks >= 5  # the loop kept running while the write waited
    assert _count(path, "seen_jti") == 1
    assert await sqlite_store.remember("iss", "j-locked", T0 + timedelta(minutes=5)) is False


async def test_a_failed_direct_write_is_rolled_back_and_reported_unavailable(
    tmp_path: Path,
) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    try:
        direct = store._direct
        assert direct is not None

        half_then_fail: list[tuple[str, list[dict[str, object]]]] = [
            ("INSERT INTO seen_jti (iss, jti, expires_at) VALUES ('i', 'j', '2026-01-01')", [{}]),
            ("INSERT INTO no_such_table VALUES (1)", [{}]),
        ]
        assert direct.attempt_many(half_then_fail) is UNAVAILABLE
        assert _count(tmp_path / "store.db", "seen_jti") == 0
    finally:
        await store.close()


def test_the_direct_connection_never_checkpoints_and_asks_for_one_in_time(
    tmp_path: Path,
) -> None:
    path = tmp_path / "wal.db"
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE t (x INTEGER)")
    direct = DirectWrites(str(path), checkpoint_every=3)
    try:
        pragmas = [
            direct._raw.execute(f"PRAGMA {p}").fetchone()[0]
            for p in ("wal_autocheckpoint", "synchronous")
        ]
        assert pragmas == [0, 1]  # no checkpoint (no fsync) in the loop; NORMAL
        due = []
        for n in range(6):
            if n % 2:
                direct.attempt_sql("INSERT INTO t VALUES (:n)", {"n": n})
            else:
                direct.attempt_many([("INSERT INTO t VALUES (:n)", [{"n": n}, {"n": -n}])])
            due.append(direct.checkpoint_due())
        # Every third commit, whichever kind.
        assert due == [False, False, True, False, False, True]
    finally:
        direct.close()


async def test_the_store_checkpoints_the_wal_on_the_async_engine(
    sqlite_store: Store, tmp_path: Path
) -> None:
    direct = sqlite_store._direct
    assert direct is not None
    direct._checkpoint_every = 5
    for n in range(5):
        await sqlite_store.remember("iss", f"c-{n}", T0 + timedelta(minutes=5))
    task = sqlite_store._checkpoint
    assert task is not None
    await task
    # Everything the direct connection wrote is now in the main file: a reader of the file
    # alone (WAL ignored) sees every row.
    with closing(sqlite3.connect(f"file:{tmp_path / 'store.db'}?immutable=1", uri=True)) as db:
        assert db.execute("SELECT COUNT(*) FROM seen_jti").fetchone()[0] == 5


def test_one_connection_one_writer_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "one.db"
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA journal_mode=WAL")
    direct = DirectWrites(str(path))
    inside = threading.Event()
    leave = threading.Event()

    def hold() -> str:
        inside.set()
        leave.wait(5)
        return "first"

    worker = threading.Thread(target=direct._attempt, args=(hold,))
    worker.start()
    try:
        assert inside.wait(5)
        assert direct.attempt_sql("SELECT 1", {}) is UNAVAILABLE  # never waits for the first
    finally:
        leave.set()
        worker.join()
        direct.close()


async def test_a_jti_row_written_raw_is_the_row_the_async_engine_writes(
    tmp_path: Path, clock: Clock
) -> None:
    """Same text in the file (so `prune`'s comparison and every reader agree), and pruned alike."""
    rows = {}
    for direct in (True, False):
        path = tmp_path / f"{direct}.db"
        async with _opened(path, clock, direct=direct) as store:
            for n, expires in enumerate(
                (T0 + timedelta(minutes=5), T0 + timedelta(minutes=5, microseconds=7))
            ):
                assert await store.remember("iss", f"j-{n}", expires) is True
            with closing(sqlite3.connect(path)) as db:
                rows[direct] = db.execute(
                    "SELECT iss, jti, expires_at, typeof(expires_at) FROM seen_jti ORDER BY jti"
                ).fetchall()
            assert await store.prune(T0 + timedelta(minutes=5)) == {
                "seen_jti": 1,
                "app_context_handle": 0,
            }
            assert _count(path, "seen_jti") == 1  # the one 7 µs later is kept
    assert rows[True] == rows[False]
    assert rows[True][0][2] == "2026-03-01 12:05:00.000000"


async def test_card_batches_written_raw_are_the_rows_the_async_engine_writes(
    tmp_path: Path, clock: Clock
) -> None:
    """Audit rows and handles: the same text in every column (instants, dates, JSON with unicode,
    awkward floats and NaN), whichever path wrote them, and read back alike."""
    audits = [
        card_audit("c-1"),
        card_audit("c-2", created_at=None, scores={"x": {"p": float("nan"), "q": -0.0}}),
    ]
    files: dict[bool, list[Any]] = {}
    read_back: dict[bool, list[Any]] = {}
    for direct in (True, False):
        path = tmp_path / f"cards-{direct}.db"
        async with _opened(path, clock, direct=direct) as store:
            handles = [
                {
                    **store.new_handle(
                        a.card_uuid, {"patient": "p-1", "ñ": [1.5, None]}, timedelta(hours=1)
                    ),
                    "handle": a.card_uuid.ljust(43, "h"),  # same in both files, of a handle's shape
                }
                for a in audits
            ]
            commits = store._direct._commits if store._direct else 0
            await store.save_cards(audits, handles)
            if store._direct is not None:
                assert store._direct._commits == commits + 1  # one raw transaction
            with closing(sqlite3.connect(path)) as db:
                files[direct] = [
                    db.execute(f"SELECT *, {types} FROM {table} ORDER BY id").fetchall()
                    for table, types in (
                        ("card_audit", "typeof(created_at), typeof(index_date), typeof(card)"),
                        ("app_context_handle", "typeof(created_at), typeof(state)"),
                    )
                ]
            read_back[direct] = [
                await store.card("c-1"),
                await store.card("c-2"),
                await store.resolve_handle("c-1".ljust(43, "h")),
            ]
    assert files[True] == files[False]
    assert "2026-03-01 12:00:00.000000" in files[True][0][0]  # T0 as naive UTC text
    assert "2026-02-28" in files[True][0][0]  # the index date as ISO text
    assert read_back[True] == read_back[False]
    assert read_back[True][2] == {"patient": "p-1", "ñ": [1.5, None]}


async def test_a_raw_card_batch_that_fails_is_rolled_back_and_written_by_the_engine(
    sqlite_store: Store,
) -> None:
    direct = sqlite_store._direct
    assert direct is not None
    ok = card_audit("ok-1")
    await sqlite_store.save_cards([ok], [])
    broken = {**sqlite_store.new_handle("bad-1", {"patient": "p-1"}, timedelta(hours=1))}
    broken["card_uuid"] = None  # NOT NULL: the raw batch fails on the handle, after the audit row
    # Rolled back whole; the engine path then refuses it too, and says so.
    with pytest.raises(Exception, match="NOT NULL"):
        await sqlite_store.save_cards([card_audit("bad-1")], [broken])
    assert await sqlite_store.card("bad-1") is None  # nothing of the failed batch was kept
    assert await sqlite_store.card("ok-1") is not None


async def test_a_card_batch_written_twice_keeps_one_row_each(sqlite_store: Store) -> None:
    """A batch retried (its first commit's fate unknown) finds its rows: none twice, no error."""
    audit = card_audit("twice-1")
    handle = sqlite_store.new_handle(audit.card_uuid, {"patient": "p-1"}, timedelta(hours=1))
    await sqlite_store.save_cards([audit], [handle])
    await sqlite_store.save_cards([audit], [handle])
    assert await sqlite_store.resolve_handle(handle["handle"]) == {"patient": "p-1"}
    assert await sqlite_store.card(audit.card_uuid) is not None
    assert _count_path(sqlite_store, "app_context_handle") == 1
    assert _count_path(sqlite_store, "card_audit") == 1


def _count_path(store: Store, table: str) -> int:
    assert store._sqlite_file is not None
    return _count(Path(store._sqlite_file), table)
