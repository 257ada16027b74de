"""Tokens at rest (SM-07): Fernet (AES-128-CBC + HMAC-SHA256) with a key from settings.

`CTO_CDS_SMART_TOKEN_KEY` is a Fernet key (`Fernet.generate_key()`); without it the key is derived
from `CTO_CDS_APP_CONTEXT_SECRET` (which must be set outside development), so a restart keeps
sessions readable. The secrets (PKCE verifier, access/refresh/id tokens) go into one encrypted JSON
object; nothing secret is stored, logged or sent to the browser in clear.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from cds.settings import Settings


def fernet_for(settings: Settings) -> Fernet:
    if settings.smart_token_key is not None:
        return Fernet(settings.smart_token_key.get_secret_value().encode())
    secret = settings.app_context_secret.get_secret_value().encode()
    digest = hashlib.sha256(b"cto-cds smart token key\0" + secret).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


class Vault:
    def __init__(self, fernet: Fernet) -> None:
        self._fernet = fernet

    def seal(self, secrets: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(secrets).encode()).decode()

    def open(self, sealed: str) -> dict[str, Any] | None:
        """The secrets, or None when the key changed or the value was altered."""
        try:
            value = json.loads(self._fernet.decrypt(sealed.encode()))
        except (InvalidToken, ValueError):
            return None
        return value if isinstance(value, dict) else None
