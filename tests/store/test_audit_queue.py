"""Write-behind card audit (cds/store/audit_queue.py): off the response path, never lost.

On SQLite and, with CTO_CDS_TEST_DATABASE_URL, PostgreSQL (the `store` fixture)."""

from __future__ import annotations

import asyncio

import pytest

from cds.store import CardAuditIn, Store
from cds.store.audit_queue import AuditQueue
from tests.store.conftest import card_audit

pytestmark = pytest.mark.anyio


class Failures:
    def __init__(self) -> None:
        self.rows = 0
        self.kinds: list[str] = []

    def __call__(self, rows: int, exc: BaseException) -> None:
        self.rows += rows
        self.kinds.append(type(exc).__name__)


async def test_every_queued_row_is_written_by_close_in_batches(store: Store) -> None:
    batches: list[int] = []

    async def write(rows: list[CardAuditIn]) -> None:
        batches.append(len(rows))
        await store.save_cards(rows)

    queue = AuditQueue(write, Failures(), batch=50)
    queue.start()
    sent = [card_audit() for _ in range(230)]
    for row in sent:
        await queue.submit(row)  # returns at once: nothing written yet
    assert sum(batches) < len(sent)
    await queue.close()  # shutdown drains the queue
    assert sum(batches) == len(sent)
    assert max(batches) == 50
    assert len(batches) < len(sent)
    for row in (sent[0], sent[-1]):
        got = await store.card(row.card_uuid)
        assert got is not None
        assert got.model_dump() == row.model_dump()


async def test_flush_waits_until_the_rows_are_in_the_database(store: Store) -> None:
    queue = AuditQueue(store.save_cards, Failures())
    queue.start()
    row = card_audit()
    await queue.submit(row)
    await queue.flush()
    assert await store.card(row.card_uuid) is not None
    await queue.close()


async def test_a_full_queue_writes_inline_instead_of_dropping(store: Store) -> None:
    gate = asyncio.Event()
    written: list[str] = []

    async def slow_write(rows: list[CardAuditIn]) -> None:
        if not gate.is_set() and len(written) == 0:
            await gate.wait()  # the writer is stuck on its first batch
        written.extend(r.card_uuid for r in rows)
        await store.save_cards(rows)

    queue = AuditQueue(slow_write, Failures(), max_queued=1)
    queue.start()
    first, second, third = card_audit(), card_audit(), card_audit()
    await queue.submit(first)
    await asyncio.sleep(0)  # the writer takes `first` and waits on the gate
    await queue.submit(second)  # fills the queue
    gate.set()
    await queue.submit(third)  # queue full: written by the caller, inline
    await queue.close()
    assert sorted(written) == sorted(r.card_uuid for r in (first, second, third))
    for row in (first, second, third):
        assert await store.card(row.card_uuid) is not None


async def test_a_failed_batch_is_counted_and_the_writer_goes_on(store: Store) -> None:
    failures = Failures()
    calls = 0

    async def flaky(rows: list[CardAuditIn]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionRefusedError("database down")
        await store.save_cards(rows)

    queue = AuditQueue(flaky, failures)
    queue.start()
    lost = card_audit()
    await queue.submit(lost)
    await queue.flush()
    kept = card_audit()
    await queue.submit(kept)
    await queue.close()
    assert (failures.rows, failures.kinds) == (1, ["ConnectionRefusedError"])
    assert await store.card(lost.card_uuid) is None
    assert await store.card(kept.card_uuid) is not None


async def test_an_unexpected_error_is_counted_not_fatal() -> None:
    failures = Failures()
    written: list[CardAuditIn] = []

    async def broken_once(rows: list[CardAuditIn]) -> None:
        if not failures.rows:
            raise ValueError("bad row")
        written.extend(rows)

    queue = AuditQueue(broken_once, failures)
    queue.start()
    await queue.submit(card_audit())
    await queue.flush()
    await queue.submit(card_audit())
    await queue.close()
    assert failures.kinds == ["ValueError"]
    assert len(written) == 1


async def test_without_a_running_writer_rows_are_written_inline(store: Store) -> None:
    queue = AuditQueue(store.save_cards, Failures())  # never started (or already closed)
    row = card_audit()
    await queue.submit(row)
    assert await store.card(row.card_uuid) is not None
    await queue.close()
