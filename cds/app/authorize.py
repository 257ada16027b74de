"""The authorization request (SM-03): PKCE S256, a 256-bit state, `aud` = iss.

No I/O here (only randomness from `secrets`): the route stores the verifier (encrypted) and the
state with the session and redirects to `authorization_url(...)`.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode

STATE_BYTES = 32  # 256 bits (SM-03 asks ≥ 122)
VERIFIER_BYTES = 48  # 64 characters, inside RFC 7636's 43…128


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str


def challenge_of(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def new_pkce() -> Pkce:
    verifier = secrets.token_urlsafe(VERIFIER_BYTES)
    return Pkce(verifier, challenge_of(verifier))


def new_state() -> str:
    return secrets.token_urlsafe(STATE_BYTES)


def authorization_url(
    endpoint: str,
    *,
    client_id: str,
    redirect_uri: str,
    scope: str,
    state: str,
    aud: str,
    challenge: str,
    launch: str | None,
) -> str:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state,
        "aud": aud,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if launch is not None:
        params["launch"] = launch
    separator = "&" if "?" in endpoint else "?"
    return endpoint + separator + urlencode(params)
