"""Client JWT verification (CH-24, CH-25, CH-06): the bad-token corpus and the good paths.

Keys are real (cryptography); the client's JWKS endpoint is a respx route that records every request
(the project's one mocking style, for fault injection), except for the `jku` good path, which fetches
over real HTTP from a loopback `JwksServer`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx

from cds.auth import ClientJwtVerifier, JwksCache, MemoryReplayStore, TrustedClient
from cds.demo.ehr import EhrKeys, JwksServer, jwks_of, sign_client_jwt
from cds.errors import AuthError

BASE = "https://cds.example.org"
DISCOVERY = f"{BASE}/cds-services"
SERVICE = f"{DISCOVERY}/cto-pci"
FEEDBACK = f"{SERVICE}/feedback"
RS_ISS = "https://ehr-rs.example.org"
RS_JWKS_URL = "https://ehr-rs.example.org/.well-known/jwks.json"
EC_ISS = "https://ehr-ec.example.org"
JKU_ISS = "https://sandbox.example.org"
JKU_URL = "https://sandbox.example.org/.well-known/jwks.json"

RS = EhrKeys.generate("RS384", kid="rs-1")
RS_NEW = EhrKeys.generate("RS384", kid="rs-2")
RS_IMPOSTOR = EhrKeys.generate("RS384", kid="rs-1")  # same kid, other key
EC = EhrKeys.generate("ES384", kid="ec-1")
EC_JKU = EhrKeys.generate("ES384", kid="sandbox-1")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _compact(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    segments = [_b64(json.dumps(part).encode()) for part in (header, claims)]
    return ".".join([*segments, _b64(signature)])


def _claims(iss: str = RS_ISS, aud: str = SERVICE, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": iss, "aud": aud, "iat": now, "exp": now + 300, "jti": "j-1", **extra}


class Harness:
    """A verifier over three trusted clients; every outgoing request meets one recording respx route.

    `close()` stops the router (it patches httpx while the harness lives)."""

    def __init__(self, *, clients: list[TrustedClient] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.served: dict[str, Any] = jwks_of(RS)
        self.status = 200
        self.now = 1000.0
        self.router = respx.mock(assert_all_called=False)
        self.router.route().mock(side_effect=self._handle)
        self.router.start()
        self.http = httpx.AsyncClient()
        self.cache = JwksCache(self.http, clock=lambda: self.now)
        self.replay = MemoryReplayStore()
        self.verifier = ClientJwtVerifier(clients or default_clients(), self.cache, self.replay)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if str(request.url) == RS_JWKS_URL:
            if self.status == 0:
                raise httpx.ConnectError("refused", request=request)
            if self.status == 302:
                return httpx.Response(302, headers={"Location": "https://elsewhere.example/j"})
            return httpx.Response(self.status, json=self.served)
        return httpx.Response(404)

    def close(self) -> None:
        asyncio.run(self.http.aclose())
        self.router.stop()

    def verify(self, token: str, audience: str = SERVICE) -> Any:
        return asyncio.run(self.verifier.verify(f"Bearer {token}", audience))

    def refused(self, authorization: str | None, audience: str = SERVICE) -> str:
        with pytest.raises(AuthError) as info:
            asyncio.run(self.verifier.verify(authorization, audience))
        return info.value.reason

    def refused_token(self, token: str, audience: str = SERVICE) -> str:
        return self.refused(f"Bearer {token}", audience)


def default_clients() -> list[TrustedClient]:
    return [
        TrustedClient(iss=RS_ISS, jwks_url=RS_JWKS_URL),
        TrustedClient(iss=EC_ISS, jwks=jwks_of(EC)),
        TrustedClient(iss=JKU_ISS, jku_allowlist=[JKU_URL]),
    ]


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness()
    yield harness
    harness.close()


def rs_token(**kwargs: Any) -> str:
    kwargs.setdefault("aud", SERVICE)
    aud = kwargs.pop("aud")
    return sign_client_jwt(RS, RS_ISS, aud, **kwargs)


# --- good paths -----------------------------------------------------------------------------


def test_rs384_with_configured_jwks_url_fetches_once(h: Harness) -> None:
    client = h.verify(rs_token(jti="a"))
    assert (client.iss, client.kid, client.jti, client.sub, client.tenant) == (
        RS_ISS,
        "rs-1",
        "a",
        None,
        None,
    )
    h.verify(rs_token(jti="b"))
    assert [str(r.url) for r in h.requests] == [RS_JWKS_URL]
    assert h.requests[0].method == "GET"


def test_es384_with_inline_jwks_makes_no_request(h: Harness) -> None:
    token = sign_client_jwt(EC, EC_ISS, SERVICE, extra_claims={"sub": "client-7", "tenant": "t1"})
    client = h.verify(token)
    assert (client.iss, client.kid, client.sub, client.tenant) == (EC_ISS, "ec-1", "client-7", "t1")
    assert h.requests == []


def test_es384_with_allowlisted_jku_over_real_http() -> None:
    server = JwksServer(EC_JKU)
    with server as url:
        clients = [TrustedClient(iss=JKU_ISS, jku_allowlist=[url])]

        async def go() -> list[str]:
            async with httpx.AsyncClient(trust_env=False) as http:
                verifier = ClientJwtVerifier(clients, JwksCache(http), MemoryReplayStore())
                out = []
                for jti in ("x1", "x2"):
                    token = sign_client_jwt(EC_JKU, JKU_ISS, SERVICE, jti=jti, jku=url)
                    out.append((await verifier.verify(f"Bearer {token}", SERVICE)).jti)
                return out

        assert asyncio.run(go()) == ["x1", "x2"]
    assert server.requests == 1  # cached after the first fetch


def test_aud_array_containing_the_endpoint_url(h: Harness) -> None:
    assert h.verify(rs_token(aud=[DISCOVERY, SERVICE])).iss == RS_ISS


def test_kid_rotation_is_found_by_a_refresh(h: Harness) -> None:
    h.verify(rs_token(jti="before"))
    h.served = jwks_of(RS, RS_NEW)
    h.now += 31
    token = sign_client_jwt(RS_NEW, RS_ISS, SERVICE, jti="after")
    assert h.verify(token).kid == "rs-2"
    assert len(h.requests) == 2


def test_scheme_is_case_insensitive_and_leeway_applies(h: Harness) -> None:
    now = time.time()
    late = rs_token(now=now - 330, jti="late")  # exp 30 s ago: inside the 60 s leeway
    early = rs_token(now=now + 30, jti="early")  # iat 30 s ahead: inside the leeway
    assert asyncio.run(h.verifier.verify(f"bearer {late}", SERVICE)).jti == "late"
    assert h.verify(early).jti == "early"


def test_discovery_and_feedback_audiences(h: Harness) -> None:
    assert h.verify(rs_token(aud=DISCOVERY, jti="d"), DISCOVERY).jti == "d"  # CH-06
    assert h.verify(rs_token(aud=FEEDBACK, jti="f"), FEEDBACK).jti == "f"


# --- the bad-token corpus -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("authorization", "slug"),
    [
        (None, "missing_token"),
        ("", "missing_token"),
        ("Bearer", "missing_token"),
        ("Bearer   ", "missing_token"),
        ("Basic dXNlcjpwYXNzd29yZA==", "not_bearer"),
        ("Token abc.def.ghi", "not_bearer"),
        ("Bearer abc", "malformed"),
        ("Bearer a.b", "malformed"),
        ("Bearer a.b.c.d", "malformed"),
        ("Bearer a b.c.d", "malformed"),
        (f"Bearer {_b64(b'not json')}.{_b64(b'{}')}.", "malformed"),
        (f"Bearer {_b64(b'[1]')}.{_b64(b'{}')}.", "malformed"),
        (f"Bearer {_b64(b'{}')}.{_b64(b'{}')}.", "alg_not_allowed"),
        ("Bearer " + "a" * 20_000 + ".b.c", "malformed"),
    ],
)
def test_header_and_shape(h: Harness, authorization: str | None, slug: str) -> None:
    assert h.refused(authorization) == slug
    assert h.requests == []


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "", None])
def test_alg_none(h: Harness, alg: str | None) -> None:
    token = _compact({"alg": alg, "typ": "JWT", "kid": "rs-1"}, _claims())
    assert h.refused_token(token) == "alg_not_allowed"
    assert h.requests == []


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_signed_with_the_rsa_public_key(h: Harness, alg: str) -> None:
    """The classic confusion attack: the RSA public key PEM used as the HMAC secret."""
    header = {"alg": alg, "typ": "JWT", "kid": "rs-1"}
    unsigned = _compact(header, _claims()).rsplit(".", 1)[0]
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    signature = hmac.new(RS.public_pem(), unsigned.encode(), digest).digest()
    assert h.refused_token(f"{unsigned}.{_b64(signature)}") == "alg_not_allowed"
    assert h.requests == []


def test_hmac_signature_under_an_rs384_header(h: Harness) -> None:
    unsigned = _compact({"alg": "RS384", "typ": "JWT", "kid": "rs-1"}, _claims()).rsplit(".", 1)[0]
    signature = hmac.new(RS.public_pem(), unsigned.encode(), hashlib.sha384).digest()
    assert h.refused_token(f"{unsigned}.{_b64(signature)}") == "bad_signature"


@pytest.mark.parametrize(
    ("aud", "audience"),
    [
        (f"{DISCOVERY}/other-service", SERVICE),
        (DISCOVERY, SERVICE),  # a discovery token replayed against the service
        (SERVICE, DISCOVERY),  # and the other way round
        (SERVICE, FEEDBACK),
        (SERVICE + "/", SERVICE),  # exact match only
        ("http://cds.example.org/cds-services/cto-pci", SERVICE),
        ([DISCOVERY, FEEDBACK], SERVICE),
        ([], SERVICE),
    ],
)
def test_wrong_aud(h: Harness, aud: str | list[str], audience: str) -> None:
    assert h.refused_token(rs_token(aud=aud), audience) == "wrong_aud"


@pytest.mark.parametrize(
    ("kwargs", "slug"),
    [
        ({"now": time.time() - 1000}, "expired"),
        ({"now": time.time() - 361}, "expired"),  # exp 61 s ago: just outside the leeway
        ({"now": time.time() + 600}, "iat_in_future"),
        ({"lifetime": 7200}, "lifetime_too_long"),
        ({"lifetime": 0}, "bad_lifetime"),
        ({"extra_claims": {"exp": None}}, "missing_exp"),
        ({"extra_claims": {"iat": None}}, "missing_iat"),
        ({"extra_claims": {"jti": None}}, "missing_jti"),
        ({"extra_claims": {"jti": ""}}, "missing_jti"),
        ({"extra_claims": {"jti": "j" * 256}}, "malformed"),
        ({"extra_claims": {"jti": 7}}, "missing_jti"),
        ({"extra_claims": {"aud": None}}, "missing_aud"),
        ({"extra_claims": {"nbf": time.time() + 600}}, "not_yet_valid"),
        ({"extra_claims": {"exp": str(int(time.time()) + 60)}}, "malformed"),
        ({"extra_claims": {"exp": 10**400}}, "malformed"),
        ({"extra_claims": {"exp": True}}, "malformed"),
        ({"extra_claims": {"aud": 42}}, "malformed"),
        ({"extra_claims": {"sub": 7}}, "malformed"),
        ({"extra_headers": {"typ": None}}, "bad_typ"),
        ({"extra_headers": {"typ": "at+jwt"}}, "bad_typ"),
        ({"extra_headers": {"kid": None}}, "missing_kid"),
        ({"extra_headers": {"kid": 7}}, "missing_kid"),
        ({"extra_headers": {"crit": ["exp"]}}, "unsupported_crit"),
        ({"extra_headers": {"alg": "RS512"}}, "alg_not_allowed"),
        ({"extra_headers": {"alg": "ES384"}}, "key_alg_mismatch"),  # RSA key, EC alg
        ({"extra_headers": {"alg": "RS256"}}, "bad_signature"),  # signed RS384
    ],
)
def test_claim_and_header_corpus(h: Harness, kwargs: dict[str, Any], slug: str) -> None:
    assert h.refused_token(rs_token(**kwargs)) == slug


def test_iss_missing_or_untrusted(h: Harness) -> None:
    assert h.refused_token(rs_token(extra_claims={"iss": None})) == "missing_iss"
    assert (
        h.refused_token(rs_token(extra_claims={"iss": "https://evil.example"})) == "untrusted_iss"
    )
    assert h.refused_token(rs_token(extra_claims={"iss": RS_ISS + "/"})) == "untrusted_iss"
    assert h.requests == []


def test_signature_by_another_key_with_the_same_kid(h: Harness) -> None:
    token = sign_client_jwt(RS_IMPOSTOR, RS_ISS, SERVICE)
    assert h.refused_token(token) == "bad_signature"


def test_tampered_payload(h: Harness) -> None:
    header, _, signature = rs_token().split(".")
    forged = _b64(json.dumps(_claims(aud=SERVICE, jti="other")).encode())
    assert h.refused_token(f"{header}.{forged}.{signature}") == "bad_signature"


def test_es256_header_with_a_p384_key(h: Harness) -> None:
    token = sign_client_jwt(EC, EC_ISS, SERVICE, extra_headers={"alg": "ES256"})
    assert h.refused_token(token) == "key_alg_mismatch"


@pytest.mark.parametrize(
    "jku",
    [
        "https://evil.example.com/jwks.json",
        "https://sandbox.example.org.evil.com/.well-known/jwks.json",
        "https://sandbox.example.org@evil.com/.well-known/jwks.json",
        "https://evil.com\\@sandbox.example.org/.well-known/jwks.json",
        "http://sandbox.example.org/.well-known/jwks.json",
        "https://sandbox.example.org:8443/.well-known/jwks.json",
        "https://sandbox.example.org/.well-known/jwks.json/../../evil",
        "https://sandbox.example.org/.well-known/jwks.json/%2e%2e/evil",
        "https://sandbox.example.org/.well-known/jwks.json?x=1",
        "https://sandbox.example.org/.well-known/jwks.json.evil",
        "https://sandbox.example.org/.well-known/jwks.json#frag",
        "file:///etc/passwd",
        "",
    ],
)
def test_jku_off_the_allowlist_is_never_fetched(h: Harness, jku: str) -> None:
    token = sign_client_jwt(EC_JKU, JKU_ISS, SERVICE, jku=jku)
    assert h.refused_token(token) == "jku_not_allowed"
    assert h.requests == []


def test_jku_from_a_client_without_an_allowlist_is_never_fetched(h: Harness) -> None:
    token = sign_client_jwt(RS, RS_ISS, SERVICE, jku=RS_JWKS_URL)
    assert h.refused_token(token) == "jku_not_allowed"
    assert h.requests == []


def test_jku_only_client_without_jku(h: Harness) -> None:
    assert h.refused_token(sign_client_jwt(EC_JKU, JKU_ISS, SERVICE)) == "missing_jku"


def test_jku_must_be_a_string(h: Harness) -> None:
    token = sign_client_jwt(EC_JKU, JKU_ISS, SERVICE, extra_headers={"jku": ["x"]})
    assert h.refused_token(token) == "malformed"


def test_unknown_kid_refreshes_once_rate_limited(h: Harness) -> None:
    h.verify(rs_token(jti="fill"))  # t=1000: the first fetch fills the cache
    assert len(h.requests) == 1
    stranger = EhrKeys.generate("RS384", kid="nobody")
    unknown = sign_client_jwt(stranger, RS_ISS, SERVICE)
    assert h.refused_token(unknown) == "unknown_kid"  # fetched 0 s ago: no refresh yet
    assert len(h.requests) == 1
    h.now += 31
    assert h.refused_token(unknown) == "unknown_kid"  # one refresh
    assert len(h.requests) == 2
    h.now += 1
    assert h.refused_token(unknown) == "unknown_kid"  # rate limited
    assert len(h.requests) == 2
    h.now += 30

    async def flood() -> list[BaseException | object]:
        tokens = [
            sign_client_jwt(
                EhrKeys(stranger.alg, f"k{i}", stranger.private_key, {}), RS_ISS, SERVICE
            )
            for i in range(40)
        ]
        calls = [h.verifier.verify(f"Bearer {t}", SERVICE) for t in tokens]
        return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(flood())
    assert {r.reason for r in results if isinstance(r, AuthError)} == {"unknown_kid"}
    assert len(results) == 40
    assert len(h.requests) == 3  # forty random kids, one fetch


def test_unknown_kid_inline(h: Harness) -> None:
    token = sign_client_jwt(EhrKeys.generate("ES384", kid="ec-9"), EC_ISS, SERVICE)
    assert h.refused_token(token) == "unknown_kid"
    assert h.requests == []


@pytest.mark.parametrize("status", [500, 404, 302, 0])
def test_jwks_url_unusable(h: Harness, status: int) -> None:
    h.status = status
    assert h.refused_token(rs_token()) == "jwks_unavailable"
    assert [str(r.url) for r in h.requests] == [RS_JWKS_URL]  # redirect not followed
    assert h.refused_token(rs_token(jti="again")) == "jwks_unavailable"
    assert len(h.requests) == 1  # failures are rate limited too


def test_jwks_fetch_timeout_covers_a_slow_server() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, json=jwks_of(RS))

    async def go() -> str:
        async with httpx.AsyncClient() as http:
            verifier = ClientJwtVerifier(
                default_clients(), JwksCache(http, timeout=0.05), MemoryReplayStore()
            )
            with pytest.raises(AuthError) as info:
                await verifier.verify(f"Bearer {rs_token()}", SERVICE)
            return info.value.reason

    start = time.perf_counter()
    with respx.mock:
        respx.get(RS_JWKS_URL).mock(side_effect=slow)
        assert asyncio.run(go()) == "jwks_unavailable"
    assert time.perf_counter() - start < 1


def test_stale_keys_kept_when_a_refresh_fails(h: Harness) -> None:
    h.verify(rs_token(jti="one"))
    h.status = 500
    h.now += 301  # past the ttl
    assert h.verify(rs_token(jti="two")).jti == "two"
    assert len(h.requests) == 2


def test_fetched_jwks_private_and_hmac_keys_are_ignored(h: Harness) -> None:
    leaked = {**RS.public_jwk, "d": "AAAA"}
    oct_key = {"kty": "oct", "kid": "rs-1", "k": _b64(RS.public_pem())}
    h.served = {"keys": [leaked, oct_key]}
    assert h.refused_token(rs_token()) == "unknown_kid"


def test_oversized_jwks_response(h: Harness) -> None:
    h.served = {"keys": [RS.public_jwk], "padding": "x" * 70_000}
    assert h.refused_token(rs_token()) == "jwks_unavailable"


def test_replayed_jti(h: Harness) -> None:
    token = rs_token(jti="once")
    h.verify(token)
    assert h.refused_token(token) == "replayed"
    assert h.refused_token(rs_token(jti="once")) == "replayed"  # a fresh token, same jti


def test_jti_is_per_issuer(h: Harness) -> None:
    h.verify(rs_token(jti="shared"))
    assert h.verify(sign_client_jwt(EC, EC_ISS, SERVICE, jti="shared")).iss == EC_ISS


def test_a_forged_token_cannot_burn_a_jti(h: Harness) -> None:
    for forged in (
        sign_client_jwt(RS_IMPOSTOR, RS_ISS, SERVICE, jti="victim"),
        rs_token(jti="victim", aud=DISCOVERY),
        rs_token(jti="victim", lifetime=7200),
    ):
        assert h.refused_token(forged) != "replayed"
    assert h.verify(rs_token(jti="victim")).jti == "victim"


def test_tenant_allowlist() -> None:
    clients = [TrustedClient(iss=EC_ISS, jwks=jwks_of(EC), tenants=["hospital-a"])]
    h = Harness(clients=clients)
    try:
        ok = sign_client_jwt(EC, EC_ISS, SERVICE, extra_claims={"tenant": "hospital-a"})
        assert h.verify(ok).tenant == "hospital-a"
        other = sign_client_jwt(EC, EC_ISS, SERVICE, extra_claims={"tenant": "hospital-b"})
        assert h.refused_token(other) == "tenant_not_allowed"
        assert h.refused_token(sign_client_jwt(EC, EC_ISS, SERVICE)) == "tenant_not_allowed"
    finally:
        h.close()


def test_the_token_is_never_logged(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="cds")
    good = rs_token(jti="logged-ok")
    bad = rs_token(jti="logged-bad", aud=DISCOVERY)
    h.verify(good)
    h.refused_token(bad)
    text = caplog.text
    assert "wrong_aud" in text
    assert "'logged-bad'" in text
    for token in (good, bad):
        assert token not in text
        assert token.split(".")[2] not in text


def test_replay_store_prunes_expired() -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    store = MemoryReplayStore(clock=lambda: now[0])

    async def go(jti: str, ttl: int) -> bool:
        return await store.remember("iss", jti, now[0] + timedelta(seconds=ttl))

    assert asyncio.run(go("a", 60)) is True
    assert asyncio.run(go("a", 60)) is False
    now[0] += timedelta(seconds=61)
    assert asyncio.run(go("b", 60)) is True
    assert len(store) == 1  # "a" pruned
