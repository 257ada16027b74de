"""What observability costs per request: the metrics middleware and the hook call's metrics and log
line, each timed alone in process (CPU time, so a shared machine does not skew it).

- `middleware`: `Observe` around an ASGI app that answers 200 at once, minus that app alone: the
  route label, the counter and the histogram of one request.
- `hook line`: `HookCall` enter/exit — two counters, a histogram, the card counter and one JSON log
  line formatted by `cds.logs.JsonFormatter` into a discarded stream, as `cto-cds serve` writes it.

    .venv/bin/python bench/bench_observe.py [--calls 50000]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import time
from collections.abc import Awaitable, Callable

from starlette.types import Message, Receive, Scope, Send

from cds.http.observe import HookCall, Observe
from cds.logs import JsonFormatter

SCOPE: Scope = {"type": "http", "method": "POST", "path": "/cds-services/operator-cto"}


async def _bare(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: Message) -> None:
    return None


def _per_call(app: Callable[[Scope, Receive, Send], Awaitable[None]], calls: int) -> float:
    async def run() -> float:
        started = time.process_time()
        for _ in range(calls):
            await app(dict(SCOPE), _receive, _send)
        return (time.process_time() - started) / calls

    return asyncio.run(run())


def _hook_lines(calls: int) -> float:
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("cds.hook")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    started = time.process_time()
    for n in range(calls):
        with HookCall("order-select", f"instance-{n}") as call:
            call.cards, call.band = 1, "easy"
    return (time.process_time() - started) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50_000)
    calls = parser.parse_args().calls
    bare = _per_call(_bare, calls)
    observed = _per_call(Observe(_bare), calls)
    line = _hook_lines(calls)
    print(f"calls: {calls}")
    print(
        f"middleware: {(observed - bare) * 1e6:.1f} µs per request (bare app {bare * 1e6:.1f} µs)"
    )
    print(f"hook line: {line * 1e6:.1f} µs per hook call (metrics and one JSON log line)")


if __name__ == "__main__":
    main()
