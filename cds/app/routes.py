"""The SMART app under /app/: `mount` adds its routes and static files to the service.

The routes, by what they do: signin_routes (launch, callback: SM-01…SM-06), page_routes (the
review page and the live recompute), save_routes (Save). All SMART traffic uses the service's
shared HTTP client, which never follows redirects, so the access token reaches only `iss` (SM-07).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from cds.app import page_routes, save_routes, signin_routes
from cds.app.app_state import SmartApp
from cds.app.client_auth import client_auth
from cds.app.discovery import DiscoveryCache
from cds.app.vault import Vault, fernet_for
from cds.settings import Settings

STATIC = Path(__file__).parent / "static"


def mount(app: FastAPI, settings: Settings) -> None:
    """Add the app to the service (called by cds.main.create_app)."""
    app.state.smart = SmartApp(DiscoveryCache(), Vault(fernet_for(settings)), client_auth(settings))
    for routes in (signin_routes, page_routes, save_routes):
        app.include_router(routes.router)
    app.mount("/app/static", StaticFiles(directory=STATIC), name="app-static")
