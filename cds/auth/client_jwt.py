"""Verify the CDS client JWT sent in `Authorization: Bearer` on every call (CH-24, CH-25, CH-06).

Checks, in order (each failure raises `AuthError(<slug>)`; the HTTP layer answers 401 with no detail):

| step | slug(s) |
|---|---|
| header present, scheme `Bearer` | `missing_token`, `not_bearer` |
| compact JWS, at most 16 KiB, JSON header/payload objects | `malformed` |
| header `alg` in ES384/RS384/ES256/RS256/PS384 (never none/HS*) | `alg_not_allowed` |
| header `kid`, `typ` = JWT, no `crit` | `missing_kid`, `bad_typ`, `unsupported_crit` |
| `iss` (unverified) trusted | `missing_iss`, `untrusted_iss` |
| `jku` (if any) on that issuer's allowlist, checked before any fetch | `jku_not_allowed` |
| key by `kid` (inline, `jwks_url` or `jku`) fits `alg` | `unknown_kid`, `jwks_unavailable`, `missing_jku`, `key_alg_mismatch` |
| signature | `bad_signature` |
| `aud` = the URL called, exactly (string or array member) | `missing_aud`, `wrong_aud` |
| `exp` required, not passed (leeway); `nbf` if present | `missing_exp`, `expired`, `not_yet_valid` |
| `iat` required, not in the future (leeway); `0 < exp - iat <= max_lifetime` | `missing_iat`, `iat_in_future`, `bad_lifetime`, `lifetime_too_long` |
| `tenant` allowlisted when the client lists tenants | `tenant_not_allowed` |
| `jti` required | `missing_jti` |
| `(iss, jti)` not seen before: last, so a forged token cannot burn a jti | `replayed` |

Header keys embedded in the token (`jwk`, `x5c`, `x5u`) are never used. The token is never logged; a
refusal is logged as its slug with the (unverified, escaped) `iss` and `jti`.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import jwt
from pydantic import BaseModel, ConfigDict

from cds import metrics
from cds.auth.jwks import JwksCache
from cds.auth.keys import ALLOWED_ALGS, key_fits
from cds.auth.replay import ReplayStore
from cds.auth.trust import TrustedClient
from cds.errors import AuthError

logger = logging.getLogger(__name__)

MAX_TOKEN_CHARS = 16 * 1024
MAX_CLAIM_CHARS = 512
MAX_JTI_CHARS = 255  # the database replay store's column (cds/store/models.py JTI_MAX)
_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


class VerifiedClient(BaseModel):
    """Who called: the trusted issuer and what its verified JWT said (CH-24)."""

    model_config = ConfigDict(frozen=True)

    iss: str
    sub: str | None = None
    jti: str
    kid: str
    tenant: str | None = None


class _Seen:
    """What the log line may show about a refused token (never the token itself)."""

    iss: object = None
    jti: object = None


class ClientJwtVerifier:
    """Checks client JWTs against the trusted clients (CH-25); one instance per process."""

    def __init__(
        self,
        trusted: list[TrustedClient],
        jwks: JwksCache,
        replay: ReplayStore,
        *,
        leeway: int = 60,
        max_lifetime: int = 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._trusted = {client.iss: client for client in trusted}
        if len(self._trusted) != len(trusted):
            raise ValueError("two trusted clients share an iss")
        self._jwks = jwks
        self._replay = replay
        self._leeway = leeway
        self._max_lifetime = max_lifetime
        self._clock = clock

    async def verify(self, authorization: str | None, audience: str) -> VerifiedClient:
        """Verify the `Authorization` header value for a call to the endpoint URL `audience`.

        `audience` is the external URL of the endpoint called (discovery, service or feedback URL,
        built from the configured public base URL, CH-06/CH-24).

        Raises:
            AuthError: the token is refused; `reason` is one of the slugs in the module docstring.
        """
        seen = _Seen()
        try:
            client = await self._verify(authorization, audience, seen)
        except AuthError as exc:
            metrics.JWT_REFUSALS.labels(exc.reason).inc()
            logger.warning(
                "client JWT refused: %s iss=%s jti=%s", exc.reason, _show(seen.iss), _show(seen.jti)
            )
            raise
        logger.debug("client JWT accepted: iss=%s jti=%s", _show(client.iss), _show(client.jti))
        return client

    async def _verify(
        self, authorization: str | None, audience: str, seen: _Seen
    ) -> VerifiedClient:
        token = _bearer(authorization)
        header, unverified = _parse(token)
        seen.iss, seen.jti = unverified.get("iss"), unverified.get("jti")
        alg, kid, jku = _check_header(header)
        iss = unverified.get("iss")
        if not isinstance(iss, str) or not iss:
            raise AuthError("missing_iss")
        client = self._trusted.get(iss)
        if client is None:
            raise AuthError("untrusted_iss")
        if jku is not None and not client.allows_jku(jku):
            raise AuthError("jku_not_allowed")
        key = await self._jwks.key(client, kid, jku)
        if not key_fits(key, alg):
            raise AuthError("key_alg_mismatch")
        claims = _verified_claims(token, key, alg)
        if claims.get("iss") != iss:  # same bytes as the unverified parse; belt and braces
            raise AuthError("malformed")
        self._check_audience(claims, audience)
        exp = self._check_times(claims)
        tenant, sub = _optional_str(claims, "tenant"), _optional_str(claims, "sub")
        if client.tenants and tenant not in client.tenants:
            raise AuthError("tenant_not_allowed")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise AuthError("missing_jti")
        if len(jti) > MAX_JTI_CHARS:
            raise AuthError("malformed")
        expires_at = datetime.fromtimestamp(exp + self._leeway, UTC)
        if not await self._replay.remember(iss, jti, expires_at):
            raise AuthError("replayed")
        return VerifiedClient(iss=iss, sub=sub, jti=jti, kid=kid, tenant=tenant)

    def _check_audience(self, claims: dict[str, Any], audience: str) -> None:
        aud = claims.get("aud")
        if aud is None:
            raise AuthError("missing_aud")
        if isinstance(aud, str):
            ok = aud == audience
        elif isinstance(aud, list) and all(isinstance(a, str) for a in aud):
            ok = audience in aud
        else:
            raise AuthError("malformed")
        if not ok:
            raise AuthError("wrong_aud")

    def _check_times(self, claims: dict[str, Any]) -> float:
        """Check `exp`, `nbf`, `iat` and the lifetime; return `exp`."""
        now = self._clock()
        exp = _numeric(claims, "exp")
        if exp is None:
            raise AuthError("missing_exp")
        if now > exp + self._leeway:
            raise AuthError("expired")
        nbf = _numeric(claims, "nbf")
        if nbf is not None and nbf > now + self._leeway:
            raise AuthError("not_yet_valid")
        iat = _numeric(claims, "iat")
        if iat is None:
            raise AuthError("missing_iat")
        if iat > now + self._leeway:
            raise AuthError("iat_in_future")
        if exp <= iat:
            raise AuthError("bad_lifetime")
        if exp - iat > self._max_lifetime:
            raise AuthError("lifetime_too_long")
        return exp


def _bearer(authorization: str | None) -> str:
    if authorization is None or not authorization.strip():
        raise AuthError("missing_token")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise AuthError("not_bearer")
    token = token.strip()
    if not token:
        raise AuthError("missing_token")
    if len(token) > MAX_TOKEN_CHARS or not _COMPACT.fullmatch(token):
        raise AuthError("malformed")
    return token


def _segment(segment: str) -> dict[str, Any]:
    """A base64url JSON object segment, or AuthError("malformed")."""
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError, RecursionError):
        raise AuthError("malformed") from None
    if not isinstance(value, dict):
        raise AuthError("malformed")
    return value


def _parse(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header_segment, payload_segment, _ = token.split(".")
    return _segment(header_segment), _segment(payload_segment)


def _check_header(header: dict[str, Any]) -> tuple[str, str, str | None]:
    """`alg`, `kid` and `jku` of an acceptable header (CH-24)."""
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALLOWED_ALGS:
        raise AuthError("alg_not_allowed")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise AuthError("missing_kid")
    if len(kid) > MAX_CLAIM_CHARS:
        raise AuthError("malformed")
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.upper() != "JWT":
        raise AuthError("bad_typ")
    if "crit" in header or "b64" in header:
        raise AuthError("unsupported_crit")
    jku = header.get("jku")
    if jku is not None and not isinstance(jku, str):
        raise AuthError("malformed")
    return alg, kid, jku


def _verified_claims(token: str, key: jwt.PyJWK, alg: str) -> dict[str, Any]:
    """The payload after checking the signature with `key.key` and exactly `alg`."""
    try:
        verified = jwt.PyJWS().decode_complete(
            token, key.key, algorithms=[alg], options={"enforce_minimum_key_length": True}
        )
    except jwt.InvalidSignatureError:
        raise AuthError("bad_signature") from None
    except jwt.PyJWTError:
        raise AuthError("malformed") from None
    payload: bytes = verified["payload"]
    try:
        claims = json.loads(payload)
    except (ValueError, RecursionError):
        raise AuthError("malformed") from None
    if not isinstance(claims, dict):
        raise AuthError("malformed")
    return claims


def _numeric(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AuthError("malformed")
    try:
        number = float(value)
    except OverflowError:
        raise AuthError("malformed") from None
    if not math.isfinite(number):
        raise AuthError("malformed")
    return number


def _optional_str(claims: dict[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_CLAIM_CHARS:
        raise AuthError("malformed")
    return value


def _show(value: object) -> str:
    """An attacker-supplied claim made safe for one log line (repr, truncated)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
