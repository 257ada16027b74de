"""The id_token is verified before its fhirUser is kept (SM-06): each failed check fails the sign-in."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from cds.app.discovery import SmartConfiguration
from cds.app.errors import SmartError
from cds.app.id_token import verified_fhir_user
from cds.demo.ehr import EhrKeys, sign_client_jwt
from tests.app.conftest import AUTH_ISSUER, SIGNING_KEY, SMART_CONFIG, Ehr, id_token

CONFIG = SmartConfiguration.model_validate(SMART_CONFIG)
USER = "Practitioner/dr-7"


async def verify(token: str | None, config: SmartConfiguration = CONFIG) -> str | None:
    async with httpx.AsyncClient() as http:
        return await verified_fhir_user(http, config, "cto-cds", token)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_a_valid_id_token_gives_its_fhir_user(ehr: Ehr) -> None:
    assert await verify(id_token(USER)) == USER
    assert ehr.jwks.call_count == 1


@pytest.mark.anyio
async def test_no_id_token_is_no_user(ehr: Ehr) -> None:
    assert await verify(None) is None
    assert ehr.jwks.call_count == 0


def _forged(**change: Any) -> str:
    other = EhrKeys.generate("RS384", kid=SIGNING_KEY.kid)  # same kid, another key
    return sign_client_jwt(other, AUTH_ISSUER, "cto-cds", extra_claims={"fhirUser": USER} | change)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("token", "why"),
    [
        (lambda: id_token(USER, aud="another-app"), "InvalidAudienceError"),
        (lambda: id_token(USER, iss="https://evil.example"), "InvalidIssuerError"),
        (lambda: id_token(USER, now=time.time() - 3600), "ExpiredSignatureError"),
        (lambda: id_token(USER, exp=None), "MissingRequiredClaimError"),
        (_forged, "InvalidSignatureError"),
        (lambda: "not.a.jwt", "not a JWT"),
    ],
    ids=["audience", "issuer", "expired", "no exp", "forged", "garbage"],
)
async def test_a_bad_id_token_fails_the_sign_in(ehr: Ehr, token: Any, why: str) -> None:
    with pytest.raises(SmartError) as refused:
        await verify(token())
    assert why in refused.value.detail


@pytest.mark.anyio
async def test_unsigned_and_hmac_tokens_are_refused_before_any_key_is_fetched(ehr: Ehr) -> None:
    import base64
    import json

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    unsigned = f"{part({'alg': 'none'})}.{part({'fhirUser': USER})}."
    with pytest.raises(SmartError, match="algorithm 'none'"):
        await verify(unsigned)
    hmac = f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'fhirUser': USER})}.c2ln"
    with pytest.raises(SmartError, match="algorithm 'HS256'"):
        await verify(hmac)
    assert ehr.jwks.call_count == 0


@pytest.mark.anyio
async def test_a_server_without_issuer_or_jwks_uri_cannot_vouch_for_its_user(ehr: Ehr) -> None:
    bare = CONFIG.model_copy(update={"jwks_uri": None})
    with pytest.raises(SmartError, match="no issuer and jwks_uri"):
        await verify(id_token(USER), bare)


@pytest.mark.anyio
async def test_unreachable_keys_fail_the_sign_in(ehr: Ehr) -> None:
    ehr.jwks.respond(503)
    with pytest.raises(SmartError, match="HTTP 503"):
        await verify(id_token(USER))
