"""Client authentication at the token endpoint (SM-05).

Public client (default): `client_id` in the form. Confidential: `private_key_jwt`, a JWT signed with
`CTO_CDS_SMART_PRIVATE_KEY` (RS384 for an RSA key, ES384 for an EC P-384 key; SM-05 requires both)
with `iss` = `sub` = client_id, `aud` = the token URL, `exp` 5 minutes ahead at most and a fresh
`jti`.
"""

from __future__ import annotations

import secrets
import time

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from cds.errors import ConfigError
from cds.settings import Settings

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
LIFETIME_SECONDS = 300  # SM-05: exp no more than five minutes ahead


class ClientAuth:
    def __init__(
        self,
        client_id: str,
        key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | None,
        kid: str | None,
    ) -> None:
        self.client_id = client_id
        self._key = key
        self._kid = kid

    @property
    def confidential(self) -> bool:
        return self._key is not None

    @property
    def algorithm(self) -> str | None:
        if self._key is None:
            return None
        return "RS384" if isinstance(self._key, rsa.RSAPrivateKey) else "ES384"

    def form(self, token_url: str, now: float | None = None) -> dict[str, str]:
        """The client fields of a token request."""
        if self._key is None:
            return {"client_id": self.client_id}
        issued = int(time.time() if now is None else now)
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": token_url,
            "exp": issued + LIFETIME_SECONDS,
            "iat": issued,
            "jti": secrets.token_urlsafe(24),
        }
        headers = {"typ": "JWT"} | ({"kid": self._kid} if self._kid else {})
        assertion = jwt.encode(claims, self._key, algorithm=self.algorithm, headers=headers)
        return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}


def client_auth(settings: Settings) -> ClientAuth:
    """From settings; a key that is not RSA or EC P-384 is a ConfigError naming the setting."""
    if settings.smart_private_key is None:
        return ClientAuth(settings.smart_client_id, None, None)
    pem = settings.smart_private_key.get_secret_value().replace("\\n", "\n").encode()
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise ConfigError("CTO_CDS_SMART_PRIVATE_KEY: not an unencrypted PEM private key") from None
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP384R1):
        return ClientAuth(settings.smart_client_id, key, settings.smart_key_id)
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048:
        return ClientAuth(settings.smart_client_id, key, settings.smart_key_id)
    raise ConfigError(
        "CTO_CDS_SMART_PRIVATE_KEY: use an RSA (≥ 2048 bits, RS384) or EC P-384 (ES384) key"
    )
