"""Sign-in: the launch (EHR or standalone, SM-09) and the OAuth callback.

The launch checks `iss` against `CTO_CDS_ALLOWED_FHIR_SERVERS` before anything else: a refused iss
gets a 400 page and is never contacted (SM-01). The callback claims the state once, exchanges the
code server-side and stores the tokens encrypted (docs/smart-app.md "The flow").
"""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from cds.app import app_state, errors, scopes, session
from cds.app.app_state import service_of, smart_of
from cds.app.authorize import authorization_url, new_pkce, new_state
from cds.app.errors import SmartError
from cds.app.id_token import verified_fhir_user
from cds.app.pages import error_page, relaunch_iss
from cds.app.token import exchange, expires_at
from cds.settings import Settings
from cds.store.app_sessions import AppSessionRow

log = logging.getLogger(__name__)

AUTHORIZE_MINUTES = 10  # time to sign in at the authorization server
# Longest parameters taken; beyond them the browser gets the error page (a query validator gave
# it a JSON OperationOutcome). A state is ours (new_state: 43 characters).
MAX_ISS, MAX_LAUNCH, MAX_STATE, MAX_CODE, MAX_ERROR = 1024, 2048, 256, 4096, 128
router = APIRouter(prefix="/app", include_in_schema=False)


def checked_iss(settings: Settings, iss: str) -> str:
    """`iss` without a trailing slash, or SmartError when it is off the allowlist (SM-01)."""
    if len(iss) > MAX_ISS:
        raise errors.not_allowed(iss[:200])
    try:
        parts = urlsplit(iss)
    except ValueError:  # "Invalid IPv6 URL": a bracket without its pair
        raise errors.not_allowed(iss[:200]) from None
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
    iss: str = "",
    launch: str | None = None,
) -> Response:
    """EHR launch (`iss` + `launch`) or standalone launch (`iss` only, SM-09)."""
    service, smart = service_of(request), smart_of(request)
    settings = service.settings
    if launch is not None and len(launch) > MAX_LAUNCH:
        detail = (
            f"the EHR's launch parameter is longer than {MAX_LAUNCH} characters; "
            "the app cannot be opened this way: tell the EHR's administrators"
        )
        return error_page(SmartError(400, "Launch refused", detail))
    try:
        base = checked_iss(settings, iss)
        config = await smart.discovery.get(service.http, base)
    except SmartError as exc:
        return error_page(exc)
    pkce, state = new_pkce(), new_state()
    session_id = session.new_session_id()
    now = app_state.utc_now()
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
    state: str = "",
    code: str | None = None,
    error: str | None = None,
) -> Response:
    """Claim the state once, exchange the code server-side, store the tokens encrypted."""
    service, smart = service_of(request), smart_of(request)
    settings = service.settings
    key = session.cookie_hash(request)
    if key is None:
        return error_page(errors.expired("this browser has no app session (cookie missing)"))
    now = app_state.utc_now()
    ours = 0 < len(state) <= MAX_STATE  # longer was never issued here: no look-up
    claimed = await service.store.claim_app_session(key, state, now) if ours else None
    if claimed is None:
        known = await service.store.app_session(key)
        if known is not None and known.expires_at <= now:
            return error_page(errors.expired("the sign-in took too long"), relaunch_iss(known))
        refused = SmartError(
            400,
            "Sign-in refused",
            "state does not match this browser's launch, or the sign-in was already completed",
            relaunch=True,
        )
        return error_page(refused, relaunch_iss(known))
    if error is not None or code is None or len(code) > MAX_CODE:
        if error is not None:
            printable = 0 < len(error) <= MAX_ERROR and error.isascii() and error.isprintable()
            detail = "the authorization server answered " + (
                error if printable else "an error code that cannot be shown"
            )
        elif code is None:
            detail = "the authorization server answered without a code"
        else:
            detail = f"the authorization server's code is longer than {MAX_CODE} characters"
        return error_page(
            SmartError(400, "Sign-in not completed", detail, relaunch=True), relaunch_iss(claimed)
        )
    secrets = smart.vault.open(claimed.secret)
    if secrets is None:
        return error_page(
            errors.expired("the session can no longer be read"), relaunch_iss(claimed)
        )
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
        return error_page(exc, relaunch_iss(claimed))
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
    session_id = request.cookies[session.COOKIE]
    tag = session.page_tag(settings.app_context_secret.get_secret_value(), session_id)
    page = "/app/?" + urlencode({"session": tag})  # a page of this session only (session.py)
    response = RedirectResponse(page, status_code=303, headers={"Cache-Control": "no-store"})
    session.set_cookie(response, settings, session_id, int(lifetime.total_seconds()))
    return response
