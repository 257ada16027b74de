"""`create_app(settings)`: the CDS Hooks service as a FastAPI application.

Every request passes `EdgeGuard` first (body limit, client JWT before the body is read); errors are
OperationOutcomes (`cds.http.errors`); `/docs`, `/redoc` and `/openapi.json` exist in development
only.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from cds import __version__, metrics
from cds.app.routes import mount as mount_app
from cds.auth.trust import TrustedClient
from cds.http import errors, observe
from cds.http.edge_guard import EdgeGuard
from cds.http.routes import router
from cds.http.state import build_state, load_static
from cds.settings import Settings, get_settings

log = logging.getLogger("cds.http")
tables_log = logging.getLogger("cds.mapping")

GC_YOUNG_THRESHOLD = 10_000
"""Net new container objects between young collections in a served process (CPython's is 700)."""


def create_app(
    settings: Settings | None = None,
    trusted: list[TrustedClient] | None = None,
    *,
    freeze_gc: bool = False,
) -> FastAPI:
    """The service; `freeze_gc` (`cto-cds serve`) freezes the start-up heap out of the garbage
    collector once the state is built and collects the young generation less often (not for
    tests, which build many apps in one process)."""
    settings = settings or get_settings()
    static = load_static(settings, trusted)
    version = static.tables.version
    # Which tables this process maps with, comparable across replicas (deploy/README.md).
    tables_log.info("mapping tables %s loaded", version, extra={"fields": {"mappings": version}})

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.cds = await build_state(settings, static)
        metrics.MAPPING_TABLES.labels(version).set(1)
        if freeze_gc:
            # Everything built so far lives as long as the process: move it out of the collector's
            # reach, so a full collection under load no longer walks it (p99 at one connection).
            # Only the young generations are collected first: a full collection here found < 1,000
            # unreachable objects among ~120,000 (imports leave little cyclic garbage; frozen, it
            # stays) and took 80-90 ms of every start-up (docs/performance.md, "Cold start").
            gc.collect(1)
            gc.freeze()
            # A hook call holds ~3,000 containers at once (its parsed body, the lean resources),
            # most freed by reference counting when it ends: at the default 700 young objects the
            # collector ran ~4.5 times per order-select call, walking them every time (0.4–0.6 ms
            # CPU). Collections still come with net growth; cycles wait a little longer for them.
            gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
        try:
            yield
        finally:
            await app.state.cds.close()

    # The API docs describe every route to whoever asks: development only.
    docs = settings.environment == "development"
    app = FastAPI(
        title="cto-cds: Operator-CTO CDS Hooks service",
        version=__version__,
        description="CDS Hooks 2.0 service scoring CTO-PCI orders (Operator-CTO, Xiao 2021).",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    # Added first, so it runs inside CORS: preflights pass, refusals still get CORS headers.
    app.add_middleware(EdgeGuard, max_body_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        # CH-26: an allowlist, never "*" with credentials.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=False,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type"],
        )
    # Outermost: counts what clients get, refusals by the inner middleware included.
    app.add_middleware(observe.Observe)
    errors.install(app)
    app.include_router(router)
    app.include_router(observe.router)
    if settings.metrics_token is None and settings.environment != "development":
        log.warning("/metrics is disabled: set CTO_CDS_METRICS_TOKEN to let Prometheus scrape it")
    mount_app(app, settings)  # the SMART app under /app/ (docs/smart-app.md)
    return app


def served_settings(settings: Settings) -> Settings:
    """The settings a served app runs with: `cto-cds serve` migrated (or checked) the database
    before starting, so the app itself (each worker's) only checks that the schema is at head."""
    return settings.model_copy(update={"migrate_on_start": False})


def served_app() -> FastAPI:
    """`cto-cds serve --workers N`: each worker process builds its app from the same CTO_CDS_*
    environment (trusted clients read from CTO_CDS_TRUSTED_CLIENTS)."""
    from cds.settings import load_settings

    return create_app(served_settings(load_settings()), freeze_gc=True)
