"""The signed-in session behind a request, with a usable access token: renewed with the refresh token
when it expired (the new scope checked again: it may only shrink), else SmartError (expired).
"""

from __future__ import annotations

from datetime import datetime

from fastapi import Request

from cds.app import app_state, errors, scopes, session
from cds.app.app_state import service_of, smart_of
from cds.app.errors import SmartError
from cds.app.token import TokenResponse, expires_at, refresh
from cds.app.vault import Vault
from cds.http.state import ServiceState
from cds.store.app_sessions import AppSessionRow


async def active(request: Request) -> tuple[AppSessionRow, str]:
    """The active session and its access token, or SmartError (expired / missing).

    An expired access token is refreshed when the server gave a refresh token (SM-07); the new
    granted scope is checked again, so a shrunk scope makes the page read-only.
    """
    service, smart = service_of(request), smart_of(request)
    key = session.cookie_hash(request)
    row = None if key is None else await service.store.app_session(key)
    if row is None or row.status != "active":
        raise errors.expired("no signed-in app session in this browser")
    now = app_state.utc_now()
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
    refreshed = await store_refreshed(service, smart.vault, row, secrets, token, now)
    return refreshed, token.access_token


async def store_refreshed(
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
