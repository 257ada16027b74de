"""The browser side of a session (SM-03, SM-07): one cookie holding an opaque random id.

The cookie is HttpOnly, SameSite=Lax (the callback is a top-level GET from the authorization
server, which Lax admits), Secure outside development, scoped to `/app/`. The database keys the
session by the id's SHA-256, so neither the cookie nor the table alone yields the other.
"""

from __future__ import annotations

import hashlib
import hmac
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


def page_tag(secret: str, session_id: str) -> str:
    """The session's tag in the page URL (`/app/?session=…`), HMAC-SHA256 under
    `CTO_CDS_APP_CONTEXT_SECRET`: neither the id nor its database key.

    One cookie serves every tab of the browser, so a later launch (another patient) takes over a
    page opened before it: reloaded, it showed the other patient, possibly without a banner (the
    EHR showing its own, this patient's), and Save's refusal said "reload the page and save
    again". The tag lets the page see that it was opened for another session.
    """
    mac = hmac.new(secret.encode(), b"app-page|" + session_id.encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


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
