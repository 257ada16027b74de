"""The review page (GET /app/) and the live recompute (POST /app/api/score), both behind an active
session; the page's Save form carries this browser's anti-forgery token.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from cds.app import save as save_form
from cds.app import session
from cds.app.active_session import active
from cds.app.app_state import service_of
from cds.app.errors import SmartError
from cds.app.live_score import live_score
from cds.app.page_html import review_page
from cds.app.pages import error_page, relaunch_iss

router = APIRouter(prefix="/app", include_in_schema=False)


ANOTHER_LAUNCH = SmartError(
    409,
    "The app was opened again",
    "this browser opened the app again, perhaps for another patient, after this page was "
    "loaded, so this page can no longer show its patient; open the app again from this "
    "patient's chart in the EHR",
)


@router.get("/", response_class=HTMLResponse)
async def review(request: Request) -> Response:
    try:
        row, token = await active(request)
    except SmartError as exc:
        key = session.cookie_hash(request)
        known = None if key is None else await service_of(request).store.app_session(key)
        return error_page(exc, relaunch_iss(known))
    if not opened_for_this_session(request):
        return error_page(ANOTHER_LAUNCH)
    return await review_page(service_of(request), row, token, csrf_of(request))


def opened_for_this_session(request: Request) -> bool:
    """False when the page URL's `session` tag (set by the callback) is another session's:
    a later launch in this browser took over the cookie (session.page_tag). A URL without the
    tag (typed, bookmarked) shows the browser's current session."""
    sent = request.query_params.getlist("session")
    if not sent:
        return True
    session_id = request.cookies.get(session.COOKIE) or ""
    tag = session.page_tag(secret_of(request), session_id).encode()
    return all(hmac.compare_digest(tag, s.encode("utf-8", "backslashreplace")) for s in sent)


def csrf_of(request: Request) -> str | None:
    session_id = request.cookies.get(session.COOKIE)
    if not session_id:
        return None
    return save_form.csrf_token(secret_of(request), session_id)


def secret_of(request: Request) -> str:
    return service_of(request).settings.app_context_secret.get_secret_value()


@router.post("/api/score")
async def score(request: Request) -> Response:
    """Live recompute: the pure engine on the inputs the page sends (no FHIR access)."""
    try:
        await active(request)
    except SmartError as exc:
        return JSONResponse({"error": exc.title, "detail": exc.detail}, status_code=exc.status)
    try:
        body = await request.json()
    except ValueError:
        return JSONResponse({"error": "Bad request", "detail": "body is not JSON"}, status_code=400)
    return live_score(service_of(request), body)
