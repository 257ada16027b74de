"""`create_app(settings)`: the CDS Hooks service as a FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from cds import __version__
from cds.app.routes import mount as mount_app
from cds.auth.trust import TrustedClient
from cds.http import errors
from cds.http.routes import router
from cds.http.state import build_state, load_static
from cds.settings import Settings, get_settings


def create_app(
    settings: Settings | None = None, trusted: list[TrustedClient] | None = None
) -> FastAPI:
    settings = settings or get_settings()
    static = load_static(settings, trusted)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.cds = await build_state(settings, static)
        try:
            yield
        finally:
            await app.state.cds.close()

    app = FastAPI(
        title="cto-cds: Operator-CTO CDS Hooks service",
        version=__version__,
        description="CDS Hooks 2.0 service scoring CTO-PCI orders (Operator-CTO, Xiao 2021).",
        lifespan=lifespan,
    )
    if settings.cors_origins:
        # CH-26: an allowlist, never "*" with credentials.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=False,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type"],
        )
    errors.install(app)
    app.include_router(router)
    mount_app(app, settings)  # the SMART app under /app/ (docs/smart-app.md)
    return app
