"""The SMART app under /app/: `mount` adds its routes and static files to the service.

The routes, by what they do: signin_routes (launch, callback: SM-01…SM-06), page_routes (the
review page and the live recompute), save_routes (Save). All SMART traffic uses the service's
shared HTTP client, which never follows redirects, so the access token reaches only `iss` (SM-07).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import WebSocketRequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from cds.app import page_routes, save_routes, signin_routes
from cds.app.app_state import SmartApp
from cds.app.client_auth import client_auth
from cds.app.discovery import DiscoveryCache
from cds.app.errors import SmartError
from cds.app.pages import error_page
from cds.app.vault import Vault, fernet_for
from cds.settings import Settings

STATIC = Path(__file__).parent / "static"
Handler = Callable[[Request, Any], Response | Awaitable[Response]]
# What a clinician reads for an error the app's own routes did not turn into a page: the service's
# handlers answer a FHIR OperationOutcome, which a browser shows as raw JSON.
PAGE_ERRORS = {
    400: ("Request refused", "the request is not one the app can answer"),
    404: ("Page not found", "this address is not a page of the app"),
    405: ("Page not found", "this address is not a page of the app"),
    413: ("Request too large", "the request is larger than the app accepts"),
    503: ("Service unavailable", "the service is unavailable for a moment; try again shortly"),
}
UNEXPECTED = ("Something went wrong", "the app could not complete this request; try again")


def mount(app: FastAPI, settings: Settings) -> None:
    """Add the app to the service (called by cds.main.create_app)."""
    app.state.smart = SmartApp(DiscoveryCache(), Vault(fernet_for(settings)), client_auth(settings))
    for routes in (signin_routes, page_routes, save_routes):
        app.include_router(routes.router)
    app.mount("/app/static", StaticFiles(directory=STATIC), name="app-static")
    for kind, handler in list(app.exception_handlers.items()):
        if kind is not WebSocketRequestValidationError:
            app.exception_handlers[kind] = _pages_in_html(handler)


def _is_page(request: Request) -> bool:
    """A request a browser navigates to (the page, sign-in, Save); not the script's JSON API."""
    path = request.url.path
    return path.startswith("/app/") and not path.startswith(("/app/api/", "/app/static/"))


def _pages_in_html(handler: Handler) -> Handler:
    """The service's error handler, but an HTML page for the app's pages (same status; never
    the exception's text, which may hold patient data; cds/http/errors.py logs it)."""

    async def handle(request: Request, exc: Exception) -> Response:
        answer = handler(request, exc)
        response = await answer if inspect.isawaitable(answer) else answer
        if not _is_page(request):
            return response
        title, detail = PAGE_ERRORS.get(response.status_code, UNEXPECTED)
        error = SmartError(
            response.status_code,
            title,
            f"{detail}; if it persists, open the app again from the patient's chart in the EHR",
        )
        page = error_page(error)
        if "retry-after" in response.headers:
            page.headers["Retry-After"] = response.headers["retry-after"]
        return page

    return handle
