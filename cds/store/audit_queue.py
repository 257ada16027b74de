"""Write-behind for card audit rows (CH-16) and their appContext handles (SM-08): the card goes out
at once, its rows follow in a batch.

A hook call used to wait for its audit INSERT (≈ 4 ms on SQLite, a round trip on PostgreSQL) and
then for its handle INSERT (≈ 2 ms of CPU per order-select call on SQLite, mostly aiosqlite thread
hops, whatever the row's size) before answering. Now it puts both rows on a bounded queue and
answers; one background task writes whatever has queued up in one transaction per batch. The
handle is read only when the app is opened from the card — after a SMART launch, seconds later —
and the app's page flushes this process's queue first (`flush()`), so a handle is never looked up
before it is written here; another replica's queue is written within milliseconds. Nothing is
dropped:

* queue full (the database is slower than the traffic): the caller writes its row itself, inline —
  back-pressure instead of loss;
* a batch that fails (the database restarting, a failover, a lost connection): written again after
  `RETRY_DELAYS` (≈ 30 s in all, a database restart's worth), one line logged per attempt with the
  exception class only (no PHI). Harmless if a lost commit did write it: both inserts skip a row
  already there (`ON CONFLICT`, cds/store/repository.py). Only then is it counted and logged by
  `on_failure`, as a failed inline write is at once (an inline write is the hook call's own time);
* shutdown: `close()` writes everything still queued before the store is closed, and a batch
  waiting for its next attempt gets it at once, then is counted if it fails;
* feedback: `flush()` first, so feedback on a card just sent finds its audit row (during an outage
  it waits for the batch's attempts: the feedback itself could not be stored anyway).

A batch that fails for good loses a card's handle with its audit row: the card was answered with
its app link, and the app opened from it says the card's context is unknown and shows the record as
read now (cds/app/card_context.py) — in an outage the app could not have stored its session anyway.

A crash of the process (SIGKILL) loses the rows still queued: at most one batch, milliseconds' worth.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass

from cds.store.engine import DATABASE_ERRORS
from cds.store.schemas import CardAuditIn, HandleRow

log = logging.getLogger(__name__)

MAX_QUEUED = 1000
MAX_BATCH = 100
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)
"""Seconds before each new attempt at a failed batch (module docstring)."""


@dataclass(frozen=True)
class CardWrite:
    """What one answered card leaves to write: its audit row and, if it links the app, its handle."""

    audit: CardAuditIn
    handle: HandleRow | None = None


Write = Callable[[list[CardWrite]], Awaitable[None]]
Failed = Callable[[int, BaseException], None]


class AuditQueue:
    """Bounded write-behind queue of card writes; `start()` in the event loop, `close()` at exit."""

    def __init__(
        self,
        write: Write,
        on_failure: Failed,
        *,
        max_queued: int = MAX_QUEUED,
        batch: int = MAX_BATCH,
        retry_delays: Sequence[float] | None = None,
    ) -> None:
        self._write = write
        self._on_failure = on_failure
        self._queue: asyncio.Queue[CardWrite] = asyncio.Queue(max_queued)
        self._batch = batch
        self._retry_delays = RETRY_DELAYS if retry_delays is None else tuple(retry_delays)
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._closing.clear()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="audit-writer")

    async def submit(self, row: CardWrite) -> None:
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
        """Write what is queued (a batch waiting to be retried: at once, one last time), then stop
        the writer."""
        self._closing.set()
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
                await self._write_batch(batch, self._retry_delays)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write_batch(
        self, batch: list[CardWrite], retry_delays: Sequence[float] = ()
    ) -> None:
        """Write `batch`, again after each of `retry_delays` while the database refuses it."""
        delays = iter(retry_delays)
        while True:
            try:
                await self._write(batch)
                return
            except DATABASE_ERRORS as exc:
                delay = next(delays, None)
                if delay is None or self._closing.is_set():
                    self._on_failure(len(batch), exc)
                    return
                log.warning(
                    "audit writer: a batch of %d not written (%s); next attempt in %g s",
                    len(batch),
                    type(exc).__name__,
                    delay,
                )
                with suppress(TimeoutError):  # close() cuts the wait short
                    await asyncio.wait_for(self._closing.wait(), delay)
            except Exception as exc:  # never let one bad batch stop the writer: count it, go on
                log.error(
                    "audit writer: unexpected %s; batch counted as failed", type(exc).__name__
                )
                self._on_failure(len(batch), exc)
                return
