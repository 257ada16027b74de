"""Every SMART step of the app's routes (SM-01…SM-09), against a fake EHR for the faults."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from cds.app import app_state, page_html, signin_routes
from cds.app.session import COOKIE
from cds.main import create_app
from cds.store import Store
from tests.app.conftest import (
    ACCESS_TOKEN,
    BASE,
    ISS,
    REFRESH_TOKEN,
    SMART_CONFIG,
    TOKEN_URL,
    Ehr,
    fhir_answer,
    launch,
    s256,
    settings,
    signed_in,
    token_body,
)

FROM_THE_CHART = "Open the app again from the patient's chart in the EHR."


def _standalone(client: TestClient) -> str:
    """A standalone launch (no `launch`); its state."""
    response = client.get("/app/launch", params={"iss": ISS})
    assert response.status_code == 302
    return dict(httpx.URL(response.headers["location"]).params)["state"]


def test_iss_off_the_allowlist_is_refused_and_never_contacted(client: TestClient, ehr: Ehr) -> None:
    odd = ("https://[::1", "http://[", "https://]/")  # urlsplit's "Invalid IPv6 URL": a 500 before
    for iss in (
        "https://evil.example/fhir",
        ISS + ".evil.example",
        ISS + "?x=1",
        "ftp://ehr",
        *odd,
    ):
        response = client.get("/app/launch", params={"iss": iss, "launch": "l"})
        assert response.status_code == 400
        assert "not one of CTO_CDS_ALLOWED_FHIR_SERVERS" in response.text
        assert "until the cto-cds administrator allows its FHIR server" in response.text
        assert COOKIE not in response.headers.get("set-cookie", "")
    assert ehr.mock.calls.call_count == 0


def test_ehr_launch_redirects_with_pkce_state_aud_and_v2_scopes(
    client: TestClient, ehr: Ehr
) -> None:
    response = client.get("/app/launch", params={"iss": ISS + "/", "launch": "xyz"})
    assert response.status_code == 302
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/app/" in cookie
    assert "Secure" not in cookie  # development
    sent = launch(client)
    assert sent["response_type"] == "code"
    assert sent["client_id"] == "cto-cds"
    assert sent["redirect_uri"] == BASE + "/app/callback"
    assert sent["aud"] == ISS
    assert sent["launch"] == "xyz"
    assert sent["code_challenge_method"] == "S256"
    assert len(sent["code_challenge"]) == 43
    assert len(sent["state"]) >= 43  # 256 bits, URL-safe base64
    scopes = sent["scope"].split()
    assert scopes[0] == "launch"
    assert "patient/Observation.cu" in scopes
    assert "patient/Observation.read" not in scopes
    assert ehr.discovery.call_count == 1  # the second launch used the cache


def test_standalone_launch_asks_launch_patient(client: TestClient) -> None:
    response = client.get("/app/launch", params={"iss": ISS})
    sent = dict(httpx.URL(response.headers["location"]).params)
    assert "launch" not in sent
    assert sent["scope"].split()[0] == "launch/patient"


def test_v1_scopes_only_when_the_server_offers_only_permission_v1(
    client: TestClient, ehr: Ehr
) -> None:
    ehr.discovery.respond(200, json=SMART_CONFIG | {"capabilities": ["permission-v1"]})
    scopes = launch(client)["scope"].split()
    assert "patient/Observation.read" in scopes
    assert "patient/Observation.write" in scopes
    assert not any(s.endswith((".rs", ".c", ".r")) for s in scopes)


def test_secure_cookie_outside_development(tmp_path: Path, ehr: Ehr) -> None:
    trusted = tmp_path / "trusted.yaml"
    trusted.write_text("- iss: https://ehr.example.org\n  jwks_url: https://ehr.example.org/jwks\n")
    production = settings(
        tmp_path,
        environment="production",
        public_base_url="https://testserver",
        app_context_secret="a-production-secret-" + "x" * 24,
        trusted_clients=trusted,
    )
    app = create_app(production)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        response = client.get("/app/launch", params={"iss": ISS, "launch": "x"})
    assert "Secure" in response.headers["set-cookie"]


def test_discovery_failure_is_a_page_and_not_cached(client: TestClient, ehr: Ehr) -> None:
    ehr.discovery.respond(503)
    response = client.get("/app/launch", params={"iss": ISS, "launch": "x"})
    assert response.status_code == 502
    assert "SMART discovery failed" in response.text
    assert "HTTP 503" in response.text
    ehr.discovery.respond(200, json=SMART_CONFIG)
    launch(client)  # fixed server: picked up at once


def test_a_server_without_s256_is_refused(client: TestClient, ehr: Ehr) -> None:
    for methods in (["plain"], ["S256", "plain"], []):
        ehr.discovery.respond(
            200, json=SMART_CONFIG | {"code_challenge_methods_supported": methods}
        )
        response = client.get("/app/launch", params={"iss": ISS, "launch": "x"})
        assert response.status_code == 502
        assert "S256 required" in response.text
    assert ehr.mock.calls.call_count == 3  # discovery only: no authorize, no token


def test_callback_exchanges_the_code_with_the_verifier(client: TestClient, ehr: Ehr) -> None:
    sent = launch(client)
    response = client.get("/app/callback", params={"code": "code-1", "state": sent["state"]})
    assert response.status_code == 303
    assert response.headers["location"].startswith("/app/?session=")
    form = ehr.token_form()
    assert form["grant_type"] == "authorization_code"
    assert form["code"] == "code-1"
    assert form["redirect_uri"] == BASE + "/app/callback"
    assert form["client_id"] == "cto-cds"
    assert s256(form["code_verifier"]) == sent["code_challenge"]
    assert "client_assertion" not in form  # public client
    assert ACCESS_TOKEN not in response.headers.get("set-cookie", "")


def test_state_mismatch_is_refused_without_a_token_request(client: TestClient, ehr: Ehr) -> None:
    launch(client)
    response = client.get("/app/callback", params={"code": "c", "state": "forged-state"})
    assert response.status_code == 400
    assert "state does not match" in response.text
    assert ehr.token.call_count == 0


def test_state_from_another_browser_is_refused(client: TestClient, ehr: Ehr) -> None:
    sent = launch(client)
    client.cookies.clear()
    client.cookies.set(COOKIE, "someone-else", path="/app/")
    response = client.get("/app/callback", params={"code": "c", "state": sent["state"]})
    assert response.status_code == 400
    assert ehr.token.call_count == 0


def test_a_code_is_exchanged_once(client: TestClient, ehr: Ehr) -> None:
    sent = launch(client)
    first = client.get("/app/callback", params={"code": "code-1", "state": sent["state"]})
    again = client.get("/app/callback", params={"code": "code-1", "state": sent["state"]})
    assert first.status_code == 303
    assert again.status_code == 400
    assert "already completed" in again.text
    assert ehr.token.call_count == 1


def test_token_error_is_shown_by_its_code_with_a_relaunch(client: TestClient, ehr: Ehr) -> None:
    ehr.token.respond(
        400, json={"error": "invalid_grant", "error_description": "<script>x</script>"}
    )
    response = signed_in(client)
    assert response.status_code == 502
    assert "invalid_grant" in response.text
    assert "<script>x" not in response.text
    assert FROM_THE_CHART in response.text  # an EHR launch: no standalone link
    assert "/app/launch?" not in response.text
    standalone = client.get("/app/callback", params={"code": "c", "state": _standalone(client)})
    assert 'href="/app/launch?iss=https%3A%2F%2Fehr.example%2Ffhir"' in standalone.text


def test_token_response_without_scope_or_not_bearer_is_refused(
    client: TestClient, ehr: Ehr
) -> None:
    body = token_body()
    del body["scope"]
    ehr.token.respond(200, json=body)
    assert "scope" in signed_in(client).text
    ehr.token.respond(200, json=token_body(token_type="mac"))
    assert "Bearer required" in signed_in(client).text


def test_authorization_server_error_is_shown(client: TestClient, ehr: Ehr) -> None:
    sent = launch(client)
    response = client.get(
        "/app/callback", params={"error": "access_denied", "state": sent["state"]}
    )
    assert response.status_code == 400
    assert "access_denied" in response.text
    assert ehr.token.call_count == 0


def test_page_uses_the_token_only_at_iss_and_never_shows_it(client: TestClient, ehr: Ehr) -> None:
    signed_in(client)
    page = client.get("/app/")
    assert page.status_code == 200, page.text
    assert ACCESS_TOKEN not in page.text
    assert REFRESH_TOKEN not in page.text
    assert "Operator-CTO" in page.text
    assert "unknown" in page.text
    assert "Ada Lovelace · female · 1956-02-03 · Patient p1" in page.text  # need_patient_banner
    assert page.headers["cache-control"] == "no-store"
    assert ehr.fhir.call_count > 0
    for call in ehr.mock.calls:
        authorization = call.request.headers.get("authorization")
        if authorization is not None:
            assert authorization == f"Bearer {ACCESS_TOKEN}"
            assert str(call.request.url).startswith(ISS + "/")
    assert ehr.anything.call_count == 0


def test_tokens_are_encrypted_at_rest(client: TestClient, app_settings: object) -> None:
    signed_in(client)
    db = Path(str(app_settings.database_url).split("///", 1)[1])  # type: ignore[attr-defined]
    raw = b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
    assert ACCESS_TOKEN.encode() not in raw
    assert REFRESH_TOKEN.encode() not in raw
    assert b"gAAAAA" in raw  # Fernet tokens


def test_scope_downgrade_makes_the_page_read_only(client: TestClient, ehr: Ehr) -> None:
    ehr.token.respond(200, json=token_body(scope="launch patient/*.rs openid fhirUser"))
    signed_in(client)
    page = client.get("/app/")
    assert page.status_code == 200
    assert "Read-only" in page.text


def test_full_write_scope_is_not_read_only(client: TestClient) -> None:
    signed_in(client)
    assert "Read-only" not in client.get("/app/").text


def test_expired_session_and_token_offer_a_relaunch(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    signed_in(client)
    later = datetime.now(UTC) + timedelta(hours=2)
    monkeypatch.setattr(app_state, "utc_now", lambda: later)
    page = client.get("/app/")
    assert page.status_code == 401
    assert "Session expired" in page.text
    # An EHR launch is opened again from the chart: "Launch again" is a standalone launch, whose
    # patient the authorization server picks (the demo's: a fixed one), not this chart's.
    assert FROM_THE_CHART in page.text
    assert "Launch again" not in page.text
    monkeypatch.undo()
    client.get("/app/callback", params={"code": "c", "state": _standalone(client)})
    monkeypatch.setattr(app_state, "utc_now", lambda: later)
    page = client.get("/app/")
    assert page.status_code == 401
    assert "Launch again" in page.text  # a standalone launch: the same way in again


def test_expired_token_in_a_live_session(
    client: TestClient, ehr: Ehr, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = token_body(expires_in=60)
    del body["refresh_token"]
    ehr.token.respond(200, json=body)
    signed_in(client)
    later = datetime.now(UTC) + timedelta(minutes=5)
    monkeypatch.setattr(app_state, "utc_now", lambda: later)
    page = client.get("/app/")
    assert page.status_code == 401
    assert "access token has expired" in page.text
    assert ehr.token.call_count == 1  # nothing to refresh with


def test_expired_token_is_refreshed_and_scope_may_shrink(
    client: TestClient, ehr: Ehr, monkeypatch: pytest.MonkeyPatch
) -> None:
    ehr.token.respond(200, json=token_body(expires_in=60))
    signed_in(client)
    assert "Read-only" not in client.get("/app/").text
    fresh = token_body(access_token="at-fresh-42", scope="launch patient/*.rs", expires_in=600)
    ehr.token.respond(200, json=fresh)
    later = datetime.now(UTC) + timedelta(minutes=5)
    monkeypatch.setattr(app_state, "utc_now", lambda: later)
    page = client.get("/app/")
    assert page.status_code == 200
    assert "Read-only" in page.text
    form = ehr.token_form()
    assert form["grant_type"] == "refresh_token"
    assert form["refresh_token"] == REFRESH_TOKEN
    assert ehr.fhir.calls[-1].request.headers["authorization"] == "Bearer at-fresh-42"
    client.get("/app/")
    assert ehr.token.call_count == 2  # the fresh token is used until it expires


def test_failed_refresh_offers_a_relaunch(
    client: TestClient, ehr: Ehr, monkeypatch: pytest.MonkeyPatch
) -> None:
    ehr.token.respond(200, json=token_body(expires_in=60))
    signed_in(client)
    ehr.token.respond(400, json={"error": "invalid_grant"})
    later = datetime.now(UTC) + timedelta(minutes=5)
    monkeypatch.setattr(app_state, "utc_now", lambda: later)
    page = client.get("/app/")
    assert page.status_code == 401
    assert "could not be renewed" in page.text
    assert FROM_THE_CHART in page.text


def test_slow_sign_in_expires_the_launch(
    client: TestClient, ehr: Ehr, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = launch(client)
    later = datetime.now(UTC) + timedelta(minutes=signin_routes.AUTHORIZE_MINUTES + 1)
    monkeypatch.setattr(app_state, "utc_now", lambda: later)
    response = client.get("/app/callback", params={"code": "c", "state": sent["state"]})
    assert response.status_code == 401
    assert "took too long" in response.text
    assert ehr.token.call_count == 0


def test_no_cookie_no_page(client: TestClient) -> None:
    page = client.get("/app/")
    assert page.status_code == 401
    assert "no signed-in app session" in page.text
    assert client.post("/app/api/score", json={"inputs": {}}).status_code == 401


def test_confidential_client_sends_a_private_key_jwt(tmp_path: Path, ehr: Ehr) -> None:
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP384R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    app = create_app(settings(tmp_path, smart_private_key=pem, smart_key_id="k1"))
    with TestClient(app, base_url=BASE, follow_redirects=False) as client:
        assert signed_in(client).status_code == 303
    form = ehr.token_form()
    assert "client_id" not in form
    header = jwt.get_unverified_header(form["client_assertion"])
    assert header["alg"] == "ES384"
    assert header["kid"] == "k1"
    claims = jwt.decode(
        form["client_assertion"], key.public_key(), algorithms=["ES384"], audience=TOKEN_URL
    )
    assert claims["iss"] == claims["sub"] == "cto-cds"
    assert claims["exp"] - claims["iat"] <= 300


def test_sessions_table_keys_by_hash_not_cookie(client: TestClient, app_settings: object) -> None:
    signed_in(client)
    cookie = client.cookies[COOKIE]

    async def rows() -> object:
        async with await Store.open(app_settings.database_url) as store:  # type: ignore[attr-defined]
            return await store.app_session(cookie)

    assert asyncio.run(rows()) is None  # the raw cookie value is not a key


def test_no_banner_when_the_ehr_shows_its_own(client: TestClient, ehr: Ehr) -> None:
    ehr.token.respond(200, json=token_body(need_patient_banner=False))
    signed_in(client)
    page = client.get("/app/")
    assert page.status_code == 200
    assert 'class="banner"' not in page.text
    assert "Operator-CTO" in page.text


def test_over_long_launch_parameters_get_the_page_not_json(client: TestClient, ehr: Ehr) -> None:
    # A query validator answered these with a JSON OperationOutcome, which a browser shows raw.
    for params, says in (
        ({"iss": ISS + "/" + "x" * 1100, "launch": "l"}, "not one of CTO_CDS_ALLOWED_FHIR_SERVERS"),
        ({"iss": ISS, "launch": "l" * 2049}, "2048 characters; the app cannot be opened this way"),
    ):
        response = client.get("/app/launch", params=params)
        assert response.status_code == 400
        assert response.headers["content-type"].startswith("text/html")
        assert says in response.text
    assert ehr.mock.calls.call_count == 0


def test_over_long_or_unprintable_callback_parameters_get_the_page(
    client: TestClient, ehr: Ehr
) -> None:
    cases: tuple[tuple[dict[str, str], str], ...] = (
        ({"code": "c", "state": "s" * 257}, "state does not match"),
        ({"code": "c" * 4097}, "code is longer than 4096 characters"),
        ({"error": "e" * 129}, "an error code that cannot be shown"),
        ({"error": ""}, "an error code that cannot be shown"),  # "answered " and nothing
        ({"error": "\u202eevil"}, "an error code that cannot be shown"),
        ({}, "answered without a code"),
    )
    for params, says in cases:
        sent = launch(client)
        response = client.get("/app/callback", params={"state": sent["state"]} | params)
        assert response.status_code == 400, params
        assert response.headers["content-type"].startswith("text/html")
        assert says in response.text, params
    assert ehr.token.call_count == 0


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"patient": "../Practitioner/x"}, "patient: is not a FHIR id"),
        ({"patient": ".."}, "patient: is not a FHIR id"),
        (
            {"fhirContext": [{"reference": "ServiceRequest/../Patient/p1"}]},
            "fhirContext: its ServiceRequest reference is not ServiceRequest/&lt;FHIR id&gt;",
        ),
        ({"fhirContext": [{"reference": "ServiceRequest/"}]}, "fhirContext: its ServiceRequest"),
        ({"expires_in": -100}, "expires_in: must not be negative"),
    ],
)
def test_a_token_response_with_a_bad_context_id_or_lifetime_fails_the_sign_in(
    client: TestClient, ehr: Ehr, extra: dict[str, Any], says: str
) -> None:
    # The ids became request paths: a 500 on the page (ValueError from the record reader), and a
    # negative lifetime made every request renew the token.
    ehr.token.respond(200, json=token_body(**extra))
    response = signed_in(client)
    assert response.status_code == 502
    assert says in response.text
    assert FROM_THE_CHART in response.text
    assert "Practitioner/x" not in response.text  # the value is not repeated
    assert client.get("/app/").status_code == 401  # no session was activated
    assert ehr.fhir.call_count == 0


def test_odd_but_usable_token_responses_sign_in(client: TestClient, ehr: Ehr) -> None:
    answers: tuple[bytes, ...] = (
        # expires_in past a float (10**400 s): OverflowError, a 500 at the callback.
        b'{"access_token": "at", "token_type": "Bearer", "scope": "launch", "patient": "p1", '
        b'"expires_in": 1' + b"0" * 400 + b"}",
        # Members sent as null are absent; SMART 2.0.0's fhirContext is reference strings; a
        # versioned reference names its order.
        b'{"access_token": "at", "token_type": "Bearer", "scope": "launch", "patient": "p1", '
        b'"need_patient_banner": null, "fhirContext": ["ServiceRequest/o1/_history/2"], '
        b'"expires_in": null, "refresh_token": null}',
    )
    for answer in answers:
        ehr.token.respond(200, content=answer, headers={"content-type": "application/json"})
        client.cookies.clear()
        response = signed_in(client)
        assert response.status_code == 303, response.text
        assert client.get("/app/").status_code == 200
    assert any("/ServiceRequest/o1" in str(c.request.url) for c in ehr.fhir.calls)


@pytest.mark.parametrize("status", [401, 500])
def test_a_record_the_ehr_does_not_answer_is_not_shown_as_all_unknown(
    client: TestClient, ehr: Ehr, status: int
) -> None:
    # A revoked token or a server down gave the page of a patient with nothing documented:
    # every input "unknown", "Order not found", not a word that nothing was read.
    signed_in(client)
    ehr.fhir.mock(side_effect=None, return_value=httpx.Response(status))
    page = client.get("/app/")
    assert page.status_code == 502
    assert page.headers["content-type"].startswith("text/html")
    assert "Record not read" in page.text
    assert f"patient (Patient read): server {'refused' if status == 401 else 'error'}" in page.text
    assert f"HTTP {status}" in page.text
    assert FROM_THE_CHART in page.text
    assert 'id="inputs"' not in page.text
    assert ACCESS_TOKEN not in page.text
    assert "p1" not in page.text  # the patient id is not repeated


def test_a_search_the_ehr_does_not_answer_is_named_on_the_page(
    client: TestClient, ehr: Ehr
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if "/Observation" in request.url.path:
            return httpx.Response(503)
        return fhir_answer(request)

    signed_in(client)
    ehr.fhir.mock(side_effect=answer)
    page = client.get("/app/")
    assert page.status_code == 200
    assert "Not read completely" in page.text
    assert "observations (Observation search): server error (HTTP 503" in page.text


def test_a_page_opened_before_another_launch_in_this_browser_does_not_show_the_new_one(
    client: TestClient, ehr: Ehr
) -> None:
    # One cookie serves every tab: after a second launch (another patient), reloading the first
    # tab showed the second patient's record in it, and Save's refusal there said "reload".
    first = signed_in(client).headers["location"]
    assert client.get(first).status_code == 200
    second = signed_in(client).headers["location"]
    assert second != first
    stale = client.get(first)
    assert stale.status_code == 409
    assert "open the app again from this patient&#x27;s chart" in stale.text
    assert 'id="inputs"' not in stale.text
    assert "Lovelace" not in stale.text
    for url in (second, "/app/"):  # this launch's page; a URL without the tag: the browser's
        assert client.get(url).status_code == 200
    for odd in (
        second + "&session=" + first.rpartition("=")[2],
        "/app/?session=%FF%FE",
        "/app/?session=",
    ):
        assert client.get(odd).status_code == 409, odd


def test_errors_on_the_app_pages_are_html_pages_not_json(
    tmp_path: Path, ehr: Ehr, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The service's handlers answered a FHIR OperationOutcome: raw JSON in the clinician's
    # browser, e.g. for /app/save opened again from the address bar after a Save.
    def broken(*args: object) -> object:
        raise RuntimeError("Ada Lovelace p1")

    monkeypatch.setattr(page_html, "load", broken)
    app = create_app(settings(tmp_path))
    with TestClient(
        app, base_url=BASE, follow_redirects=False, raise_server_exceptions=False
    ) as client:
        signed_in(client)
        for method, path, status in (
            ("GET", "/app/save", 405),
            ("GET", "/app/no-such-page", 404),
            ("GET", "/app/", 500),
        ):
            page = client.request(method, path)
            assert page.status_code == status, path
            assert page.headers["content-type"].startswith("text/html"), path
            assert "open the app again from the patient&#x27;s chart" in page.text
            assert "Lovelace" not in page.text
            assert "Traceback" not in page.text
        deep = client.post(
            "/app/api/score",
            content=b'{"inputs": ' + b"[" * 5000 + b"]" * 5000 + b"}",
            headers={"content-type": "application/json"},
        )
        assert deep.status_code == 400
        assert deep.json()["resourceType"] == "OperationOutcome"  # the script's API stays JSON
