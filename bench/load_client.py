"""The load generator of bench/load.py: keep-alive HTTP/1.1 over asyncio streams, requests pre-built.

Why not httpx in the loop: at a thousand requests a second on a shared 2-core machine, a client's
own per-request cost is a large share of the CPU the server needs; pre-built request bytes on a raw
keep-alive connection cost almost nothing, so the figures are the server's. (httpx checks the
answers' content outside the timed loops, in bench/load.py.)

* `closed_loop`: N connections, each sends the next request as soon as the last answer arrived.
* `fixed_rate`: requests scheduled at a fixed rate whatever the answers do; latency counts from the
  scheduled time, so a stall shows in full (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field


class BadAnswerError(RuntimeError):
    """An answer the generator cannot read (no Content-Length, connection closed)."""


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """Send one pre-built request; the status and the body of its answer."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = None
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise BadAnswerError(f"answer without Content-Length: {lines[0]!r}")
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


def post(host: str, port: int, path: str, body: bytes, token: str) -> bytes:
    """The bytes of one POST with a bearer token and a JSON body."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


@dataclass
class Run:
    """What one timed run measured."""

    latencies: list[float] = field(default_factory=list)
    errors: dict[int, int] = field(default_factory=dict)
    elapsed: float = 0.0

    @property
    def ok(self) -> int:
        return len(self.latencies)

    def record(self, status: int, latency: float) -> None:
        if status == 200:
            self.latencies.append(latency)
        else:
            self.errors[status] = self.errors.get(status, 0) + 1


Next = Callable[[], bytes]


async def closed_loop(
    host: str, port: int, next_request: Next, connections: int, seconds: float
) -> Run:
    run = Run()
    conns = [await Connection.open(host, port) for _ in range(connections)]
    start = time.perf_counter()
    stop = start + seconds

    async def worker(conn: Connection) -> None:
        while True:
            now = time.perf_counter()
            if now >= stop:
                return
            status, _ = await conn.send(next_request())
            run.record(status, time.perf_counter() - now)

    try:
        await asyncio.gather(*(worker(c) for c in conns))
    finally:
        run.elapsed = time.perf_counter() - start
        for conn in conns:
            conn.close()
    return run


async def fixed_rate(
    host: str, port: int, next_request: Next, rate: float, seconds: float, connections: int = 32
) -> Run:
    run = Run()
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(await Connection.open(host, port))
    requests = [next_request() for _ in range(int(rate * seconds))]  # built before the clock starts
    start = time.perf_counter()

    async def one(request: bytes, due: float) -> None:
        conn = await idle.get()
        try:
            status, _ = await conn.send(request)
            run.record(status, time.perf_counter() - due)
        finally:
            idle.put_nowait(conn)

    tasks = []
    for i, request in enumerate(requests):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(request, due)))
    await asyncio.gather(*tasks)
    run.elapsed = time.perf_counter() - start
    while not idle.empty():
        idle.get_nowait().close()
    return run


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank; NaN when there is none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]
