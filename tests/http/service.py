"""The service in-process for tests/http: real app, real SQLite store, lifespan run by hand, so a
test can stream bodies through httpx's ASGITransport and swap the database under it."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from cds.http.state import ServiceState
from cds.main import create_app
from cds.settings import Settings
from cds.store.engine import create_engine
from cds.store.repository import Store
from tests.integration.service_harness import BASE, TRUSTED, settings

SERVICE = "/cds-services/operator-cto"
FEEDBACK = SERVICE + "/feedback"


@asynccontextmanager
async def running(
    tmp: Path, config: Settings | None = None, fhir_base: str | None = None, **extra: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(config or settings(tmp, fhir_base, **extra), trusted=TRUSTED)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            yield app, client


async def break_database(app: FastAPI, url: str, remove: Path | None = None) -> None:
    """Fault injection: the store (and the jti replay check) now talk to `url`, e.g. a closed port;
    `remove` (a directory) is deleted once the engine exists, taking a SQLite file with it."""
    state: ServiceState = app.state.cds
    broken = Store(create_engine(url))
    if remove is not None:
        shutil.rmtree(remove)
    await state.store.close()
    state.store = broken
    state.verifier._replay = broken
