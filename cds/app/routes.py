"""The app's routes under /app/: launch, callback, the page, live recompute and Save.

The launch checks `iss` against `CTO_CDS_ALLOWED_FHIR_SERVERS` before anything else: a refused iss
gets a 400 page and is never contacted (SM-01). All SMART traffic uses the service's shared HTTP
client, which never follows redirects, so the access token reaches only `iss` (SM-07).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from cds.app import errors, scopes, session
from cds.app import save as save_form
from cds.app.authorize import authorization_url, new_pkce, new_state
from cds.app.client_auth import ClientAuth, client_auth
from cds.app.discovery import DiscoveryCache
from cds.app.errors import SmartError
from cds.app.id_token import verified_fhir_user
from cds.app.pages import error_page
from cds.app.token import TokenResponse, exchange, expires_at, refresh
from cds.app.vault import Vault, fernet_for
from cds.app.view import Form, live_score, load, record_request, render, review_page, typed_inputs
from cds.errors import InputError, UpdateNotGrantedError, WriteBackError
from cds.http.state import ServiceState
from cds.pipeline import policy_of
from cds.scoring.engine import score_all
from cds.scoring.inputs import parse_inputs
from cds.settings import Settings
from cds.sources.fhir import FetchLimits, FhirRestSource
from cds.store.app_sessions import AppSessionRow
from cds.writeback.send import FhirWriter
from cds.writeback.send import save as write_back

log = logging.getLogger(__name__)

AUTHORIZE_MINUTES = 10  # time to sign in at the authorization server
STATIC = Path(__file__).parent / "static"
router = APIRouter(prefix="/app", include_in_schema=False)


@dataclass
class SmartApp:
    """What the app holds for the service's lifetime, beside the service state."""

    discovery: DiscoveryCache
    vault: Vault
    client: ClientAuth


def mount(app: FastAPI, settings: Settings) -> None:
    """Add the app to the service (called by cds.main.create_app)."""
    app.state.smart = SmartApp(DiscoveryCache(), Vault(fernet_for(settings)), client_auth(settings))
    app.include_router(router)
    app.mount("/app/static", StaticFiles(directory=STATIC), name="app-static")


def _service(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.cds
    return state


def _smart(request: Request) -> SmartApp:
    smart: SmartApp = request.app.state.smart
    return smart


def _now() -> datetime:
    return datetime.now(UTC)


def checked_iss(settings: Settings, iss: str) -> str:
    """`iss` without a trailing slash, or SmartError when it is off the allowlist (SM-01)."""
    parts = urlsplit(iss)
    if (
        parts.scheme not in ("http", "https")
        or not parts.netloc
        or parts.query
        or parts.fragment
        or not settings.fhir_server_allowed(iss)
    ):
        raise errors.not_allowed(iss[:200])
    return iss.rstrip("/")


@router.get("/launch")
async def launch(
    request: Request,
    iss: Annotated[str, Query(max_length=1024)] = "",
    launch: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response:
    """EHR launch (`iss` + `launch`) or standalone launch (`iss` only, SM-09)."""
    service, smart = _service(request), _smart(request)
    settings = service.settings
    try:
        base = checked_iss(settings, iss)
        config = await smart.discovery.get(service.http, base)
    except SmartError as exc:
        return error_page(exc)
    pkce, state = new_pkce(), new_state()
    session_id = session.new_session_id()
    now = _now()
    await service.store.prune_app_sessions(now)  # expired sessions take their tokens with them
    await service.store.start_app_session(
        AppSessionRow(
            session_hash=session.session_hash(session_id),
            iss=base,
            status="authorizing",
            created_at=now,
            expires_at=now + timedelta(minutes=AUTHORIZE_MINUTES),
            secret=smart.vault.seal({"code_verifier": pkce.verifier}),
            state=state,
            context={"ehr_launch": launch is not None},
        )
    )
    target = authorization_url(
        config.authorization_endpoint,
        client_id=smart.client.client_id,
        redirect_uri=settings.public_base_url + "/app/callback",
        scope=scopes.requested(ehr_launch=launch is not None, v1_only=config.v1_only),
        state=state,
        aud=base,
        challenge=pkce.challenge,
        launch=launch,
    )
    response = RedirectResponse(target, status_code=302, headers={"Cache-Control": "no-store"})
    session.set_cookie(response, settings, session_id, AUTHORIZE_MINUTES * 60)
    return response


@router.get("/callback")
async def callback(
    request: Request,
    state: Annotated[str, Query(max_length=256)] = "",
    code: Annotated[str | None, Query(max_length=4096)] = None,
    error: Annotated[str | None, Query(max_length=128)] = None,
) -> Response:
    """Claim the state once, exchange the code server-side, store the tokens encrypted."""
    service, smart = _service(request), _smart(request)
    settings = service.settings
    key = session.cookie_hash(request)
    if key is None:
        return error_page(errors.expired("this browser has no app session (cookie missing)"))
    now = _now()
    claimed = await service.store.claim_app_session(key, state, now) if state else None
    if claimed is None:
        known = await service.store.app_session(key)
        if known is not None and known.expires_at <= now:
            return error_page(errors.expired("the sign-in took too long"), known.iss)
        refused = SmartError(
            400,
            "Sign-in refused",
            "state does not match this browser's launch, or the sign-in was already completed",
            relaunch=True,
        )
        return error_page(refused, known.iss if known else None)
    if error is not None or code is None:
        shown = error if error is not None and error.isascii() and error.isprintable() else None
        detail = f"the authorization server answered {shown or 'without a code'}"
        return error_page(
            SmartError(400, "Sign-in not completed", detail, relaunch=True), claimed.iss
        )
    secrets = smart.vault.open(claimed.secret)
    if secrets is None:
        return error_page(errors.expired("the session can no longer be read"), claimed.iss)
    try:
        config = await smart.discovery.get(service.http, claimed.iss)
        token = await exchange(
            service.http,
            config.token_endpoint,
            smart.client,
            code=code,
            redirect_uri=settings.public_base_url + "/app/callback",
            verifier=str(secrets["code_verifier"]),
        )
        user = await verified_fhir_user(
            service.http, config, settings.smart_client_id, token.id_token
        )
    except SmartError as exc:
        log.info("smart token exchange failed: %s", exc.title)
        return error_page(exc, claimed.iss)
    lifetime = timedelta(minutes=settings.app_session_minutes)
    context = {
        "iss": claimed.iss,
        "scope": token.scope,
        "can_write": scopes.can_write(token.scope),
        "patient": token.patient,
        "encounter": token.encounter,
        "fhirContext": token.fhirContext,
        "need_patient_banner": token.need_patient_banner,
        "appContext": token.appContext,
        "fhirUser": user,
        "token_expires_at": expires_at(token, now.timestamp()),
        "ehr_launch": bool(claimed.context.get("ehr_launch")),
    }
    sealed = smart.vault.seal(
        {
            "access_token": token.access_token,
            "refresh_token": token.refresh_token,
            "id_token": token.id_token,
        }
    )
    await service.store.activate_app_session(key, context, sealed, now + lifetime)
    response = RedirectResponse("/app/", status_code=303, headers={"Cache-Control": "no-store"})
    session.set_cookie(
        response, settings, request.cookies[session.COOKIE], int(lifetime.total_seconds())
    )
    return response


async def _active(request: Request) -> tuple[AppSessionRow, str]:
    """The active session and its access token, or SmartError (expired / missing).

    An expired access token is refreshed when the server gave a refresh token (SM-07); the new
    granted scope is checked again, so a shrunk scope makes the page read-only.
    """
    service, smart = _service(request), _smart(request)
    key = session.cookie_hash(request)
    row = None if key is None else await service.store.app_session(key)
    if row is None or row.status != "active":
        raise errors.expired("no signed-in app session in this browser")
    now = _now()
    if row.expires_at <= now:
        raise errors.expired("the app session has expired")
    secrets = smart.vault.open(row.secret)
    if secrets is None or not secrets.get("access_token"):
        raise errors.expired("the session can no longer be read")
    if float(row.context.get("token_expires_at", 0)) > now.timestamp():
        return row, str(secrets["access_token"])
    if not secrets.get("refresh_token"):
        raise errors.expired("the EHR's access token has expired")
    try:
        config = await smart.discovery.get(service.http, row.iss)
        token = await refresh(
            service.http, config.token_endpoint, smart.client, str(secrets["refresh_token"])
        )
    except SmartError:
        raise errors.expired(
            "the EHR's access token has expired and could not be renewed"
        ) from None
    refreshed = await _store_refreshed(service, smart.vault, row, secrets, token, now)
    return refreshed, token.access_token


async def _store_refreshed(
    service: ServiceState,
    vault: Vault,
    row: AppSessionRow,
    secrets: dict[str, object],
    token: TokenResponse,
    now: datetime,
) -> AppSessionRow:
    context = row.context | {
        "scope": token.scope,
        "can_write": scopes.can_write(token.scope) and bool(row.context.get("can_write")),
        "token_expires_at": expires_at(token, now.timestamp()),
    }
    sealed = vault.seal(
        secrets
        | {"access_token": token.access_token}
        | ({"refresh_token": token.refresh_token} if token.refresh_token else {})
    )
    await service.store.activate_app_session(row.session_hash, context, sealed, row.expires_at)
    return AppSessionRow(
        session_hash=row.session_hash,
        iss=row.iss,
        status="active",
        created_at=row.created_at,
        expires_at=row.expires_at,
        secret=sealed,
        context=context,
    )


@router.get("/", response_class=HTMLResponse)
async def review(request: Request) -> Response:
    try:
        row, token = await _active(request)
    except SmartError as exc:
        key = session.cookie_hash(request)
        known = None if key is None else await _service(request).store.app_session(key)
        return error_page(exc, known.iss if known else None)
    return await review_page(_service(request), row, token, _csrf(request))


def _csrf(request: Request) -> str | None:
    session_id = request.cookies.get(session.COOKIE)
    if not session_id:
        return None
    return save_form.csrf_token(_secret(request), session_id)


def _secret(request: Request) -> str:
    return _service(request).settings.app_context_secret.get_secret_value()


@router.post("/save")
async def save_findings(request: Request) -> Response:
    """Save: the form's findings and the scores, written back with the session's token (issue 8).

    Checks in order, each with its own page: the session (401, relaunch), the anti-forgery token
    (403), the write scopes (403), one save at a time (409), the inputs (400, typed values kept),
    the FHIR server (502, the one-line error naming the resource, the form kept).
    """
    service = _service(request)
    body = await request.body()
    if len(body) > save_form.MAX_FORM_BYTES:
        return error_page(SmartError(413, "Save refused", "the form is too large"))
    try:
        row, token = await _active(request)
    except SmartError as exc:
        return error_page(exc, None)
    form = save_form.parse_form(body)
    if not save_form.csrf_ok(
        _secret(request), request.cookies.get(session.COOKIE), form.get(save_form.CSRF_FIELD)
    ):
        refused = SmartError(
            403,
            "Save refused",
            "the form's anti-forgery token does not match this browser's session; "
            "reload the page and save again",
        )
        return error_page(refused, row.iss)
    if not row.context.get("can_write"):
        read_only = SmartError(
            403, "Read-only", "the EHR did not grant the write scopes needed to save"
        )
        return error_page(read_only, row.iss)
    async with save_form.one_save_per_session(service.store, row.session_hash) as mine:
        if not mine:
            busy = SmartError(409, "Save in progress", "a save from this session is still running")
            return error_page(busy, row.iss)
        return await _save(service, row, token, form, _csrf(request))


async def _save(
    service: ServiceState,
    row: AppSessionRow,
    token: str,
    form: dict[str, str],
    csrf: str | None,
) -> Response:
    posted = save_form.posted_inputs(form)
    try:
        loaded = await load(service, row, token)
    except SmartError as exc:
        return error_page(exc, row.iss)
    try:
        values = parse_inputs(typed_inputs(posted))
    except InputError as exc:
        issues = save_form.issues_by_field(exc)
        shown = Form(
            posted=posted,
            issues=issues,
            notice=save_form.notice_html("save-error", "Not saved: " + "; ".join(issues.values())),
        )
        return render(service, row, loaded, csrf=csrf, form=shown, status=400)
    report = score_all(values, policy_of(service.tables))
    entered = save_form.findings_to_save(
        values, loaded.case.mapping.inputs, save_form.saved_before(loaded.record)
    )
    if not entered:
        nothing = save_form.notice_html(
            "save-note", "Nothing to save: no lesion finding was entered or changed."
        )
        shown = Form(posted=posted, notice=nothing, report=report)
        return render(service, row, loaded, csrf=csrf, form=shown)
    # A save needs the whole record and is not on the hook's 2 s budget.
    limits = FetchLimits(timeout=10.0, deadline=60.0)
    request = record_request(row)
    source = FhirRestSource(row.iss, service.http, token=token, limits=limits)
    redact = tuple(i for i in (request.patient_id, request.order_id) if i)
    writer = FhirWriter(row.iss, service.http, token=token, redact_ids=redact)
    try:
        result = await write_back(
            source,
            writer,
            service.tables,
            request,
            entered,
            user=save_form.performer(row.context.get("fhirUser")),
            now=_now().replace(microsecond=0),
            updatable=scopes.may_update(str(row.context.get("scope") or "")),
        )
    except UpdateNotGrantedError as exc:
        refused = Form(posted=posted, notice=save_form.update_refused_html(exc), report=report)
        return render(service, row, loaded, csrf=csrf, form=refused, status=403)
    except (WriteBackError, InputError) as exc:
        log.info("app save refused by the FHIR server: %s", type(exc).__name__)
        failed = save_form.notice_html("save-error", f"Not saved: {exc}")
        shown = Form(posted=posted, notice=failed, report=report)
        return render(service, row, loaded, csrf=csrf, form=shown, status=502)
    done = Form(posted=posted, notice=save_form.result_html(result), report=report)
    return render(service, row, loaded, csrf=csrf, form=done)


@router.post("/api/score")
async def score(request: Request) -> Response:
    """Live recompute: the pure engine on the inputs the page sends (no FHIR access)."""
    try:
        await _active(request)
    except SmartError as exc:
        return JSONResponse({"error": exc.title, "detail": exc.detail}, status_code=exc.status)
    try:
        body = await request.json()
    except ValueError:
        return JSONResponse({"error": "Bad request", "detail": "body is not JSON"}, status_code=400)
    return live_score(_service(request), body)
