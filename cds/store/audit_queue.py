"""Write-behind for card audit rows (CH-16): the card goes out at once, its row follows in a batch.

A hook call used to wait for its audit INSERT (≈ 4 ms on SQLite, a round trip on PostgreSQL) before
answering. Now it puts the row on a bounded queue and answers; one background task writes whatever
has queued up in one transaction per batch. Nothing is dropped:

* queue full (the database is slower than the traffic): the caller writes its row itself, inline —
  back-pressure instead of loss;
* a batch that fails (the database is down): counted and logged by `on_failure` with the exception
  class only (no PHI), as a failed inline write was before;
* shutdown: `close()` writes everything still queued before the store is closed;
* feedback: `flush()` first, so feedback on a card just sent finds its audit row.

A crash of the process (SIGKILL) loses the rows still queued: at most one batch, milliseconds' worth.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from cds.store.engine import DATABASE_ERRORS
from cds.store.schemas import CardAuditIn

log = logging.getLogger(__name__)

MAX_QUEUED = 1000
MAX_BATCH = 100

Write = Callable[[list[CardAuditIn]], Awaitable[None]]
Failed = Callable[[int, BaseException], None]


class AuditQueue:
    """Bounded write-behind queue of audit rows; `start()` in the event loop, `close()` at exit."""

    def __init__(
        self,
        write: Write,
        on_failure: Failed,
        *,
        max_queued: int = MAX_QUEUED,
        batch: int = MAX_BATCH,
    ) -> None:
        self._write = write
        self._on_failure = on_failure
        self._queue: asyncio.Queue[CardAuditIn] = asyncio.Queue(max_queued)
        self._batch = batch
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="audit-writer")

    async def submit(self, row: CardAuditIn) -> None:
        """Queue `row`; when the queue is full (or not running), write it now instead."""
        if self._task is not None and not self._task.done():
            try:
                self._queue.put_nowait(row)
                return
            except asyncio.QueueFull:
                pass
        await self._write_batch([row])

    async def flush(self) -> None:
        """Return once every row queued so far is written (or counted as failed)."""
        if self._task is not None and not self._task.done():
            await self._queue.join()

    async def close(self) -> None:
        """Write what is queued, then stop the writer."""
        await self.flush()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        leftovers = []  # only if the writer died: never lose them silently
        while not self._queue.empty():
            leftovers.append(self._queue.get_nowait())
            self._queue.task_done()
        if leftovers:
            await self._write_batch(leftovers)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write_batch(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write_batch(self, batch: list[CardAuditIn]) -> None:
        try:
            await self._write(batch)
        except DATABASE_ERRORS as exc:
            self._on_failure(len(batch), exc)
        except Exception as exc:  # never let one bad batch stop the writer: count it, go on
            log.error("audit writer: unexpected %s; batch counted as failed", type(exc).__name__)
            self._on_failure(len(batch), exc)
