"""The id_token is verified before its `fhirUser` is trusted (SM-06; OpenID Connect Core §3.1.3.7).

`fhirUser` names the clinician who signed in: it is shown on the page and becomes the `performer` of
what Save writes, so a forged or replayed id_token would put another clinician's name on a record.
The token is checked with the authorization server's keys from the `jwks_uri` that SMART discovery
of the (allowlisted) `iss` advertised: signature (asymmetric algorithms only), `iss` = the advertised
`issuer`, `aud` = this app's client_id, `exp`/`iat` with a small leeway. A server that issues an
id_token but advertises no `issuer`/`jwks_uri`, or a token that fails any check, fails the sign-in:
nothing unverified is kept.
"""

from __future__ import annotations

import json

import httpx
import jwt

from cds.app.discovery import SmartConfiguration
from cds.app.errors import SmartError

ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "PS384"]
"""Asymmetric only: `none` and HMAC (a shared secret a public client cannot hold) are refused."""
LEEWAY_SECONDS = 60
MAX_JWKS_BYTES = 256 * 1024


def _refused(detail: str) -> SmartError:
    return SmartError(502, "Sign-in failed", f"id_token: {detail}", relaunch=True)


async def _keys(http: httpx.AsyncClient, jwks_uri: str) -> jwt.PyJWKSet:
    try:
        response = await http.get(jwks_uri, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        cause = type(exc).__name__
        raise _refused(f"the authorization server's keys are unreachable ({cause})") from None
    if response.status_code != 200 or len(response.content) > MAX_JWKS_BYTES:
        raise _refused(f"the authorization server's keys: HTTP {response.status_code}")
    try:
        return jwt.PyJWKSet.from_dict(json.loads(response.content))
    except (ValueError, jwt.PyJWTError):
        raise _refused("the authorization server's keys are not a JWK Set") from None


async def verified_fhir_user(
    http: httpx.AsyncClient, config: SmartConfiguration, client_id: str, id_token: str | None
) -> str | None:
    """The verified `fhirUser` claim; None when no id_token was issued or it has no such claim."""
    if not id_token:
        return None
    if not config.issuer or not config.jwks_uri:
        raise _refused("issued, but discovery advertises no issuer and jwks_uri to verify it")
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.PyJWTError:
        raise _refused("not a JWT") from None
    if header.get("alg") not in ALGORITHMS:
        raise _refused(f"algorithm {header.get('alg')!r} is not accepted")
    keyset = await _keys(http, config.jwks_uri)
    kid = header.get("kid")
    keys = [k for k in keyset.keys if kid is None or k.key_id == kid]
    if len(keys) != 1:
        raise _refused("no single key of the authorization server matches its kid")
    try:
        claims = jwt.decode(
            id_token,
            keys[0].key,
            algorithms=ALGORITHMS,
            audience=client_id,
            issuer=config.issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": ["iss", "aud", "exp", "iat"]},
        )
    except jwt.PyJWTError as exc:
        raise _refused(f"{type(exc).__name__}") from None
    value = claims.get("fhirUser")
    return value if isinstance(value, str) else None
