"""Refusals over HTTP: every bad client JWT → 401 with no detail, on every endpoint (CH-24, CH-25)."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from cds.demo.ehr import EhrKeys
from tests.integration.service_harness import (
    BASE,
    ES384,
    ISS,
    RS384,
    auth,
    service,
    token,
)

SERVICE = "/cds-services/operator-cto"
PATHS = ["/cds-services", SERVICE, SERVICE + "/feedback"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unsigned(path: str) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": ES384.kid}).encode())
    claims = _b64(
        json.dumps(
            {"iss": ISS, "aud": BASE + path, "exp": 9999999999, "iat": 1, "jti": "x"}
        ).encode()
    )
    return f"{header}.{claims}."


def _hs256_with_public_key(path: str) -> str:
    # The algorithm-confusion attack: the RSA public key PEM used as an HMAC secret.
    import hashlib
    import hmac
    import time

    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": RS384.kid}).encode())
    now = int(time.time())
    claims = _b64(
        json.dumps(
            {"iss": ISS, "aud": BASE + path, "exp": now + 300, "iat": now, "jti": "hs"}
        ).encode()
    )
    signing = f"{header}.{claims}".encode()
    sig = hmac.new(RS384.public_pem(), signing, hashlib.sha256).digest()
    return f"{header}.{claims}.{_b64(sig)}"


BAD: dict[str, Any] = {
    "no header": lambda p: None,
    "basic scheme": lambda p: "Basic dXNlcjpwYXNz",
    "alg none": lambda p: f"Bearer {_unsigned(p)}",
    "HS256 with the public key": lambda p: f"Bearer {_hs256_with_public_key(p)}",
    "wrong aud": lambda p: f"Bearer {token('/cds-services/other')}",
    "aud of another endpoint": lambda p: (
        f"Bearer {token('/cds-services' if p != '/cds-services' else SERVICE)}"
    ),
    "expired": lambda p: f"Bearer {token(p, now=1_000_000_000)}",
    "iat in the future": lambda p: (
        f"Bearer {token(p, extra_claims={'iat': 4_000_000_000, 'exp': 4_000_000_300})}"
    ),
    "unknown kid": lambda p: f"Bearer {token(p, EhrKeys.generate('ES384', kid='stranger'))}",
    "untrusted iss": lambda p: (
        "Bearer "
        + __import__("cds.demo.ehr", fromlist=["x"]).sign_client_jwt(
            ES384, "https://evil.example.org", BASE + p
        )
    ),
    "jku off the allowlist": lambda p: (
        f"Bearer {token(p, jku='https://evil.example.org/jwks.json')}"
    ),
    "missing typ": lambda p: f"Bearer {token(p, extra_headers={'typ': None})}",
    "missing jti": lambda p: f"Bearer {token(p, extra_claims={'jti': None})}",
    "garbage": lambda p: "Bearer not.a.jwt",
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", list(BAD))
def test_bad_tokens_get_401_without_detail(tmp_path: Path, path: str, case: str) -> None:
    header = BAD[case](path)
    with service(tmp_path, None) as client:
        headers = {"Authorization": header} if header else {}
        response = (
            client.get(path, headers=headers)
            if path == "/cds-services"
            else client.post(path, json={}, headers=headers)
        )
    assert response.status_code == 401, (case, response.text)
    assert response.content == b""


def test_a_replayed_jti_is_refused(tmp_path: Path) -> None:
    headers = auth("/cds-services", jti="once-only")
    with service(tmp_path, None) as client:
        assert client.get("/cds-services", headers=headers).status_code == 200
        assert client.get("/cds-services", headers=headers).status_code == 401


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_replay_is_refused_across_replicas_sharing_the_store(
    tmp_path: Path, backend: str, database_urls: dict[str, str]
) -> None:
    urls = database_urls
    if backend not in urls:
        pytest.skip("PostgreSQL runs when CTO_CDS_TEST_DATABASE_URL is set (.ci/run sets it)")
    headers = auth("/cds-services", jti=f"shared-{uuid.uuid4()}")
    with (
        service(tmp_path, None, database_url=urls[backend]) as first,
        service(tmp_path, None, database_url=urls[backend]) as second,
    ):  # two replicas
        assert first.get("/cds-services", headers=headers).status_code == 200
        assert second.get("/cds-services", headers=headers).status_code == 401


def test_tokens_never_reach_the_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bad = token("/cds-services/other")
    with service(tmp_path, None) as client:
        client.get("/cds-services", headers={"Authorization": f"Bearer {bad}"})
    assert bad not in caplog.text
    assert bad.split(".")[2] not in caplog.text
