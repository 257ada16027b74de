"""A reverse proxy adding a fixed delay to every FHIR request: a remote EHR server on a local one.

bench/load.py runs it in front of the local sekmet FHIR server for variant (c). Every GET waits
BENCH_DELAY_MS, then is forwarded to BENCH_TARGET; the target's base URL in the answer (paging links)
is rewritten to the proxy's own, so the service never goes around the delay.

Run: BENCH_TARGET=http://127.0.0.1:8090/fhir BENCH_SELF=http://127.0.0.1:PORT BENCH_DELAY_MS=100 \
     uvicorn bench.delay_proxy:app --port PORT
"""

from __future__ import annotations

import asyncio
import os

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

TARGET = os.environ.get("BENCH_TARGET", "http://127.0.0.1:8090").rstrip("/")
SELF = os.environ.get("BENCH_SELF", "http://127.0.0.1:8091").rstrip("/")
DELAY = float(os.environ.get("BENCH_DELAY_MS", "100")) / 1000
_client = httpx.AsyncClient(timeout=30.0)


async def forward(request: Request) -> Response:
    await asyncio.sleep(DELAY)
    url = TARGET + request.url.path + (f"?{request.url.query}" if request.url.query else "")
    headers = {k: v for k, v in request.headers.items() if k.lower() in {"accept", "authorization"}}
    answer = await _client.get(url, headers=headers)
    content = answer.content.replace(TARGET.encode(), SELF.encode())
    return Response(
        content, answer.status_code, media_type=answer.headers.get("content-type", "text/plain")
    )


app = Starlette(routes=[Route("/{path:path}", forward, methods=["GET"])])
