"""The floor for bench/load.py: the least a CDS Hooks endpoint can do with the same request.

A bare FastAPI app served exactly like `cto-cds serve` (uvicorn, one worker, same loop and HTTP
implementation): it verifies the client JWT with the product's own `ClientJwtVerifier` (same trust
file, same checks; the jti remembered in memory, not in a database), parses the same JSON body, and
returns a fixed card. Nothing else: no mapping, no scoring, no store. Lives in bench/, never in the
product.

Run by bench/load.py: `uvicorn bench.floor_app:app` with BENCH_TRUSTED_CLIENTS (the trust file)
and BENCH_PUBLIC_BASE_URL (what `aud` must be, as CTO_CDS_PUBLIC_BASE_URL for the service).
"""

from __future__ import annotations

import os
from typing import Any

import httpx
from fastapi import Body, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from cds.auth.client_jwt import ClientJwtVerifier
from cds.auth.jwks import JwksCache
from cds.auth.replay import MemoryReplayStore
from cds.auth.trust import load_trusted_clients
from cds.errors import AuthError

CARD = {
    "cards": [
        {
            "uuid": "00000000-0000-4000-8000-000000000000",
            "summary": "Operator-CTO: floor card",
            "indicator": "info",
            "source": {"label": "bench floor"},
        }
    ]
}

_BASE = os.environ.get("BENCH_PUBLIC_BASE_URL", "http://127.0.0.1:8000")
_TRUSTED = os.environ.get("BENCH_TRUSTED_CLIENTS")
_verifier = ClientJwtVerifier(
    load_trusted_clients(_TRUSTED) if _TRUSTED else [],
    JwksCache(httpx.AsyncClient()),
    MemoryReplayStore(),
)

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/cds-services/{service_id}")
async def floor(
    service_id: str,
    request: Request,
    body: dict[str, Any] = Body(...),  # noqa: B008 - FastAPI parses the same body the service does
) -> JSONResponse:
    try:
        await _verifier.verify(request.headers.get("authorization"), _BASE + request.url.path)
    except AuthError:
        raise HTTPException(401) from None
    if not isinstance(body.get("hook"), str):
        raise HTTPException(400, "hook is required")
    return JSONResponse(CARD)
