"""The browser side of a session (SM-03, SM-07): one cookie holding an opaque random id.

The cookie is HttpOnly, SameSite=Lax (the callback is a top-level GET from the authorization
server, which Lax admits), Secure outside development, scoped to `/app/`. The database keys the
session by the id's SHA-256, so neither the cookie nor the table alone yields the other.
"""

from __future__ import annotations

import hashlib
import secrets

from fastapi import Request, Response

from cds.settings import Settings

COOKIE = "cto_cds_app"
COOKIE_PATH = "/app/"
ID_BYTES = 32


def new_session_id() -> str:
    return secrets.token_urlsafe(ID_BYTES)


def session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def set_cookie(response: Response, settings: Settings, session_id: str, max_age: int) -> None:
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        secure=settings.environment != "development",
        samesite="lax",
    )


def cookie_hash(request: Request) -> str | None:
    """The stored key of this browser's session, or None without a well-formed cookie."""
    value = request.cookies.get(COOKIE)
    if not value or len(value) > 128:
        return None
    return session_hash(value)
