"""The SMART app against a fake EHR (respx): an authorization server and a FHIR server at ISS.

respx stands in for the EHR only to inject faults and to count requests (which the real-server
tests cannot do); the app, its store (SQLite) and its HTTP client are real.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import httpx2  # what starlette's TestClient answers with
import pytest
import respx
from fastapi.testclient import TestClient

from cds.demo.ehr import EhrKeys, sign_client_jwt
from cds.main import create_app
from cds.settings import Settings

BASE = "http://testserver"
ISS = "https://ehr.example/fhir"
AUTHORIZE = "https://auth.example/authorize"
TOKEN_URL = "https://auth.example/token"
ACCESS_TOKEN = "at-secret-0123456789"
REFRESH_TOKEN = "rt-secret-9876543210"
FULL_SCOPE = (
    "launch openid fhirUser patient/Patient.r patient/Condition.rs patient/Procedure.rs "
    "patient/Observation.rs patient/ServiceRequest.rs patient/Observation.cu "
    "patient/RiskAssessment.cu patient/Provenance.c"
)
CREATE_ONLY_SCOPE = FULL_SCOPE.replace(".cu", ".c")
"""What an EHR that grants no update gives: Save may create, never change what it saved."""
AUTH_ISSUER = "https://auth.example"
JWKS_URL = "https://auth.example/jwks"
SIGNING_KEY = EhrKeys.generate("RS384", kid="as-key-1")
"""The authorization server's id_token key; its public half is served at JWKS_URL."""
SMART_CONFIG: dict[str, Any] = {
    "issuer": AUTH_ISSUER,
    "jwks_uri": JWKS_URL,
    "authorization_endpoint": AUTHORIZE,
    "token_endpoint": TOKEN_URL,
    "grant_types_supported": ["authorization_code"],
    "code_challenge_methods_supported": ["S256"],
    "capabilities": ["launch-ehr", "launch-standalone", "permission-v2", "client-public"],
}
PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "name": [{"family": "Lovelace", "given": ["Ada"]}],
    "gender": "female",
    "birthDate": "1956-02-03",
}


def token_body(scope: str = FULL_SCOPE, **extra: Any) -> dict[str, Any]:
    return {
        "access_token": ACCESS_TOKEN,
        "refresh_token": REFRESH_TOKEN,
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": scope,
        "patient": "p1",
        "need_patient_banner": True,
    } | extra


def id_token(fhir_user: str | None, now: float | None = None, **claims: Any) -> str:
    """An id_token as the authorization server signs it (RS384; `aud` = the app's client_id);
    `claims` override a claim or, with None, remove it."""
    extra = {"sub": "user-1", "fhirUser": fhir_user} | claims
    return sign_client_jwt(SIGNING_KEY, AUTH_ISSUER, "cto-cds", extra_claims=extra, now=now)


def fhir_answer(request: httpx.Request) -> httpx.Response:  # respx side effect
    """An EHR FHIR server holding one patient and nothing else."""
    if request.url.path.endswith("/Patient/p1"):
        return httpx.Response(200, json=PATIENT)
    return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset", "entry": []})


class Ehr:
    """The fake EHR's routes, to change answers and read what the app sent."""

    def __init__(self, mock: respx.MockRouter) -> None:
        self.mock = mock
        self.discovery = mock.get(ISS + "/.well-known/smart-configuration").respond(
            200, json=SMART_CONFIG
        )
        self.token = mock.post(TOKEN_URL).respond(200, json=token_body())
        self.jwks = mock.get(JWKS_URL).respond(200, json=SIGNING_KEY.jwks())
        self.fhir = mock.get(url__startswith=ISS + "/").mock(side_effect=fhir_answer)
        self.anything = mock.route().respond(599)  # any other host: recorded, never reached

    def token_form(self, index: int = -1) -> dict[str, str]:
        body = self.token.calls[index].request.content.decode()
        return {k: v[0] for k, v in parse_qs(body).items()}


@pytest.fixture
def ehr() -> Iterator[Ehr]:
    with respx.mock(assert_all_called=False) as mock:
        yield Ehr(mock)


def settings(tmp: Path, **extra: Any) -> Settings:
    extra.setdefault("database_url", f"sqlite+aiosqlite:///{tmp / 'app.db'}")
    extra.setdefault("public_base_url", BASE)
    return Settings(allowed_fhir_servers=[ISS], **extra)


@pytest.fixture
def app_settings(tmp_path: Path) -> Settings:
    return settings(tmp_path)


@pytest.fixture
def client(app_settings: Settings, ehr: Ehr) -> Iterator[TestClient]:
    with TestClient(create_app(app_settings), base_url=BASE, follow_redirects=False) as c:
        yield c


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def launch(client: TestClient, **params: str) -> dict[str, str]:
    """Run /app/launch; the authorization request's parameters."""
    response = client.get("/app/launch", params={"iss": ISS, "launch": "xyz"} | params)
    assert response.status_code == 302, response.text
    assert response.headers["location"].startswith(AUTHORIZE + "?")
    return query(response.headers["location"])


def signed_in(client: TestClient) -> httpx2.Response:
    """Launch and come back from the authorization server with a code."""
    sent = launch(client)
    response: httpx2.Response = client.get(
        "/app/callback", params={"code": "code-1", "state": sent["state"]}
    )
    return response
