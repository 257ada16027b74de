"""Write-behind card audit (cds/store/audit_queue.py): off the response path, never lost.

On SQLite and, with CTO_CDS_TEST_DATABASE_URL, PostgreSQL (the `store` fixture)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest

from cds.store import Store
from cds.store.audit_queue import AuditQueue, CardWrite
from tests.store.conftest import card_audit

pytestmark = pytest.mark.anyio


def writer(store: Store) -> Callable[[list[CardWrite]], Awaitable[None]]:
    """What the service's state passes the queue: audit rows and handles, one transaction."""

    async def write(writes: list[CardWrite]) -> None:
        await store.save_cards([w.audit for w in writes], [w.handle for w in writes if w.handle])

    return write


def queued(n: int = 1) -> list[CardWrite]:
    return [CardWrite(card_audit()) for _ in range(n)]


class Failures:
    def __init__(self) -> None:
        self.rows = 0
        self.kinds: list[str] = []

    def __call__(self, rows: int, exc: BaseException) -> None:
        self.rows += rows
        self.kinds.append(type(exc).__name__)


async def test_every_queued_row_is_written_by_close_in_batches(store: Store) -> None:
    batches: list[int] = []

    async def write(rows: list[CardWrite]) -> None:
        batches.append(len(rows))
        await writer(store)(rows)

    queue = AuditQueue(write, Failures(), batch=50)
    queue.start()
    sent = queued(230)
    for row in sent:
        await queue.submit(row)  # returns at once: nothing written yet
    assert sum(batches) < len(sent)
    await queue.close()  # shutdown drains the queue
    assert sum(batches) == len(sent)
    assert max(batches) == 50
    assert len(batches) < len(sent)
    for audit in (sent[0].audit, sent[-1].audit):
        got = await store.card(audit.card_uuid)
        assert got is not None
        assert got.model_dump() == audit.model_dump()


async def test_flush_waits_until_the_rows_are_in_the_database(store: Store) -> None:
    queue = AuditQueue(writer(store), Failures())
    queue.start()
    [row] = queued()
    await queue.submit(row)
    await queue.flush()
    assert await store.card(row.audit.card_uuid) is not None
    await queue.close()


async def test_a_full_queue_writes_inline_instead_of_dropping(store: Store) -> None:
    gate = asyncio.Event()
    written: list[str] = []

    async def slow_write(rows: list[CardWrite]) -> None:
        if not gate.is_set() and len(written) == 0:
            await gate.wait()  # the writer is stuck on its first batch
        written.extend(r.audit.card_uuid for r in rows)
        await writer(store)(rows)

    queue = AuditQueue(slow_write, Failures(), max_queued=1)
    queue.start()
    first, second, third = queued(3)
    await queue.submit(first)
    await asyncio.sleep(0)  # the writer takes `first` and waits on the gate
    await queue.submit(second)  # fills the queue
    gate.set()
    await queue.submit(third)  # queue full: written by the caller, inline
    await queue.close()
    assert sorted(written) == sorted(r.audit.card_uuid for r in (first, second, third))
    for row in (first, second, third):
        assert await store.card(row.audit.card_uuid) is not None


async def test_a_failed_batch_is_written_again_once_the_database_is_back(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """A database restart or failover under the write-behind: the batch waits, nothing is lost."""
    failures = Failures()
    attempts = 0

    async def restarting(rows: list[CardWrite]) -> None:
        nonlocal attempts
        attempts += 1
        if attempts <= 2:
            raise ConnectionRefusedError("database down")
        await writer(store)(rows)

    queue = AuditQueue(restarting, failures, retry_delays=(0.01, 0.02, 0.04))
    queue.start()
    rows = queued(2)
    for row in rows:
        await queue.submit(row)
    await queue.flush()
    await queue.close()
    assert (attempts, failures.rows) == (3, 0)
    for row in rows:
        assert await store.card(row.audit.card_uuid) is not None
    retried = [r.getMessage() for r in caplog.records if "next attempt" in r.getMessage()]
    assert retried == [
        "audit writer: a batch of 2 not written (ConnectionRefusedError); next attempt in 0.01 s",
        "audit writer: a batch of 2 not written (ConnectionRefusedError); next attempt in 0.02 s",
    ]


async def test_a_batch_that_keeps_failing_is_counted_after_its_attempts(store: Store) -> None:
    failures = Failures()
    down = True
    attempts = 0

    async def outage(rows: list[CardWrite]) -> None:
        nonlocal attempts
        attempts += 1
        if down:
            raise ConnectionRefusedError("database down")
        await writer(store)(rows)

    queue = AuditQueue(outage, failures, retry_delays=(0.01, 0.01))
    queue.start()
    [lost, kept] = queued(2)
    await queue.submit(lost)
    await queue.flush()  # returns once the batch is given up: the writer is not stuck on it
    assert (attempts, failures.rows, failures.kinds) == (3, 1, ["ConnectionRefusedError"])
    down = False
    await queue.submit(kept)
    await queue.close()
    assert await store.card(lost.audit.card_uuid) is None
    assert await store.card(kept.audit.card_uuid) is not None


async def test_close_gives_a_waiting_batch_its_last_attempt_at_once(store: Store) -> None:
    """Shutdown (SIGTERM, a rolling update) must not sit out a retry delay past the pod's grace
    period: the wait is cut short and the batch tried once more."""
    failures = Failures()
    down = True
    failed = asyncio.Event()

    async def outage(rows: list[CardWrite]) -> None:
        if down:
            failed.set()
            raise ConnectionRefusedError("database down")
        await writer(store)(rows)

    queue = AuditQueue(outage, failures, retry_delays=(3600.0,))
    queue.start()
    [row] = queued(1)
    await queue.submit(row)
    await failed.wait()
    down = False  # the database is back before the hour is up
    await asyncio.wait_for(queue.close(), timeout=60)  # a hang guard, not a speed test
    assert failures.rows == 0
    assert await store.card(row.audit.card_uuid) is not None


async def test_an_unexpected_error_is_counted_not_fatal() -> None:
    failures = Failures()
    written: list[CardWrite] = []

    async def broken_once(rows: list[CardWrite]) -> None:
        if not failures.rows:
            raise ValueError("bad row")  # a bug, not the database: not retried
        written.extend(rows)

    queue = AuditQueue(broken_once, failures, retry_delays=(0.01,))
    queue.start()
    await queue.submit(CardWrite(card_audit()))
    await queue.flush()
    await queue.submit(CardWrite(card_audit()))
    await queue.close()
    assert failures.kinds == ["ValueError"]
    assert len(written) == 1


async def test_without_a_running_writer_rows_are_written_inline(store: Store) -> None:
    queue = AuditQueue(writer(store), Failures())  # never started (or already closed)
    [row] = queued()
    await queue.submit(row)
    assert await store.card(row.audit.card_uuid) is not None
    await queue.close()


async def test_a_cards_handle_is_written_with_its_audit_row_in_one_transaction(
    store: Store,
) -> None:
    """The hook answers before either row exists; `flush()` (the app page does it) makes the
    handle resolvable; a failed batch loses both, counted once per card."""
    started: list[int] = []

    async def write(writes: list[CardWrite]) -> None:
        started.append(len(writes))
        await writer(store)(writes)

    queue = AuditQueue(write, Failures())
    queue.start()
    audit = card_audit()
    handle = store.new_handle(audit.card_uuid, {"patient": "p-1"}, timedelta(hours=1))
    await queue.submit(CardWrite(audit, handle))
    # Not yet: submit returns before the write begins (any await after it may let the writer run;
    # on SQLite the write then completes without yielding again).
    assert started == []
    await queue.flush()
    assert await store.resolve_handle(handle["handle"]) == {"patient": "p-1"}
    assert await store.card(audit.card_uuid) is not None
    await queue.close()

    failures = Failures()

    async def down(writes: list[CardWrite]) -> None:
        raise ConnectionRefusedError("database down")

    broken = AuditQueue(down, failures)
    broken.start()
    lost = card_audit()
    gone = store.new_handle(lost.card_uuid, {"patient": "p-2"}, timedelta(hours=1))
    await broken.submit(CardWrite(lost, gone))
    await broken.close()
    assert failures.rows == 1
    assert await store.resolve_handle(gone["handle"]) is None
    assert await store.card(lost.card_uuid) is None
