"""The CDS Hooks service end to end, as an EHR calls it: discovery, order-select / order-sign with
every prefetch variant, the FHIR server behind it, feedback, and refusals (CH-03…CH-27)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import pytest

from tests.harness.invariants import check_response
from tests.integration.service_harness import (
    ES384,
    RS384,
    auth,
    full_prefetch,
    hook_body,
    service,
)

SERVICE = "/cds-services/operator-cto"


def expected_inputs(cohort_expected: dict[str, Any], patient: str) -> dict[str, Any]:
    case = next(p for p in cohort_expected["patients"] if p["patient"] == patient)
    return {name: want["value"] for name, want in case["inputs"].items()}


def call(client: Any, body: dict[str, Any], keys: Any = ES384) -> Any:
    return client.post(SERVICE, json=body, headers=auth(SERVICE, keys))


def test_discovery_lists_both_hooks_under_one_id(tmp_path: Path, fhir_base: str) -> None:
    with service(tmp_path, fhir_base) as client:
        response = client.get("/cds-services", headers=auth("/cds-services"))
    assert response.status_code == 200
    services = response.json()["services"]
    assert {(s["id"], s["hook"]) for s in services} == {
        ("operator-cto", "order-select"),
        ("operator-cto", "order-sign"),
    }
    for s in services:
        assert s["prefetch"]["patient"] == "Patient/{{context.patientId}}"
        assert s["description"]


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
@pytest.mark.parametrize("keys", [ES384, RS384], ids=["ES384", "RS384"])
def test_full_prefetch_gives_a_card_that_meets_the_invariants(
    tmp_path: Path,
    fhir_base: str,
    cohort_resources: list[dict[str, Any]],
    hook: Literal["order-select", "order-sign"],
    keys: Any,
) -> None:
    body = hook_body(
        hook,
        "pt23",
        cohort_resources,
        fhir_server=fhir_base,
        prefetch=full_prefetch("pt23", cohort_resources),
    )
    with service(tmp_path, fhir_base) as client:
        response = call(client, body, keys)
    assert response.status_code == 200, response.text
    assert check_response(response.json()) == []
    (card,) = response.json()["cards"]
    # pt23: lesion 7, operator −4 from override Observations → 3, moderate (Xiao 2021 Table 6: 21/24).
    assert card["summary"].startswith("Operator-CTO 3 — moderate")
    assert card["indicator"] == "info"  # a known moderate band (issue 13)
    assert any(link["type"] == "smart" and link.get("appContext") for link in card["links"])
    assert "did not match the search" not in card["detail"]  # server quirks stay off the card


@pytest.mark.parametrize("variant", ["none", "partial", "null", "outcome", "paged"])
def test_every_prefetch_variant_gives_the_same_inputs(
    tmp_path: Path,
    fhir_base: str,
    cohort_resources: list[dict[str, Any]],
    cohort_expected: dict[str, Any],
    variant: str,
) -> None:
    patient = "pt04"
    full = full_prefetch(patient, cohort_resources)
    prefetch: dict[str, Any] | None
    if variant == "none":
        prefetch = None
    elif variant == "partial":
        prefetch = {"patient": full["patient"], "conditions": full["conditions"]}
    elif variant == "null":
        # CH-12: null = the query ran and found nothing (here: no DiagnosticReports, no orders).
        prefetch = {**full, "reports": None}
    elif variant == "outcome":
        failed = {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "timeout", "diagnostics": "timed out"}],
        }
        prefetch = {**full, "observations": failed, "procedures": failed}
    else:  # a first page with a next link into the FHIR server
        procedures = full["procedures"]
        first = dict(
            procedures,
            entry=procedures["entry"][:1],
            link=[
                {
                    "relation": "next",
                    "url": f"{fhir_base}/Procedure?patient={patient}&_count=1&_offset=1",
                }
            ],
        )
        prefetch = {**full, "procedures": first}
    body = hook_body(
        "order-select", patient, cohort_resources, fhir_server=fhir_base, prefetch=prefetch
    )
    with service(tmp_path, fhir_base) as client:
        response = call(client, body)
        assert response.status_code == 200, response.text
        assert check_response(response.json()) == []
        card_uuid = response.json()["cards"][0]["uuid"]
        audit = client.portal.call(client.app.state.cds.store.card, card_uuid)  # type: ignore[union-attr, attr-defined]
    got = {name: mapped["value"] for name, mapped in audit.inputs.items()}
    assert got == expected_inputs(cohort_expected, patient)


def test_a_non_cto_order_gets_no_card_and_no_fhir_read(
    tmp_path: Path, cohort_resources: list[dict[str, Any]], counting_server: Any
) -> None:
    order = next(r for r in cohort_resources if r["resourceType"] == "ServiceRequest")
    plain = dict(
        order, code={"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "92928"}]}
    )
    body = hook_body(
        "order-sign", "pt01", cohort_resources, fhir_server=counting_server.url, order=plain
    )
    with service(tmp_path, counting_server.url) as client:
        response = call(client, body)
    assert response.json() == {"cards": []}
    assert counting_server.requests == 0


def test_a_disallowed_fhir_server_is_never_contacted(
    tmp_path: Path, cohort_resources: list[dict[str, Any]], counting_server: Any
) -> None:
    body = hook_body(
        "order-select",
        "pt01",
        cohort_resources,
        fhir_server=counting_server.url,
        prefetch={"patient": full_prefetch("pt01", cohort_resources)["patient"]},
    )
    with service(tmp_path, "https://only-this.example.org/fhir") as client:
        response = call(client, body)
    assert response.status_code == 200
    assert counting_server.requests == 0
    detail = response.json()["cards"][0]["detail"]
    assert "allowlist" in detail


def test_the_ehr_access_token_is_sent_to_the_allowed_server_only(
    tmp_path: Path,
    cohort_resources: list[dict[str, Any]],
    counting_server: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = hook_body(
        "order-select",
        "pt01",
        cohort_resources,
        fhir_server=counting_server.url,
        prefetch={"patient": full_prefetch("pt01", cohort_resources)["patient"]},
    )
    body["fhirAuthorization"] = {
        "access_token": "ehr-token-123",
        "token_type": "Bearer",
        "expires_in": 30,
        "scope": "patient/*.read",
        "subject": "cto-cds",
    }
    with service(tmp_path, counting_server.url) as client:
        response = call(client, body)
    assert response.status_code == 200
    assert counting_server.requests >= 5  # one concurrent round of the missing searches
    assert set(counting_server.authorization) == {"Bearer ehr-token-123"}
    assert "ehr-token-123" not in caplog.text
    assert "ehr-token-123" not in response.text


def test_cors_allows_only_configured_origins(tmp_path: Path) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    with service(tmp_path, None, cors_origins=["https://sandbox.example.org"]) as client:
        ok = client.options(SERVICE, headers={**preflight, "Origin": "https://sandbox.example.org"})
        other = client.options(SERVICE, headers={**preflight, "Origin": "https://evil.example.org"})
    assert ok.headers["access-control-allow-origin"] == "https://sandbox.example.org"
    assert "authorization" in ok.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-origin" not in other.headers
    assert ok.headers.get("access-control-allow-credentials") != "true"


def test_no_prefetch_and_no_server_is_412_with_an_operation_outcome(
    tmp_path: Path, cohort_resources: list[dict[str, Any]]
) -> None:
    body = hook_body("order-sign", "pt01", cohort_resources, fhir_server=None)
    with service(tmp_path, None) as client:
        response = call(client, body)
    assert response.status_code == 412
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "patient" in outcome["issue"][0]["expression"][0]


def test_a_slow_fhir_server_gives_a_card_naming_what_was_not_read(
    tmp_path: Path, cohort_resources: list[dict[str, Any]], slow_server: Any
) -> None:
    full = full_prefetch("pt01", cohort_resources)
    prefetch = {"patient": full["patient"]}  # everything else must come from the slow server
    body = hook_body(
        "order-select", "pt01", cohort_resources, fhir_server=slow_server, prefetch=prefetch
    )
    with service(tmp_path, slow_server, fhir_deadline=0.5) as client:
        response = call(client, body)
    assert response.status_code == 200, response.text
    card = response.json()["cards"][0]
    assert "not read in time" in card["detail"]
    assert check_response(response.json()) == []


def test_an_order_for_another_patient_is_400_naming_both(
    tmp_path: Path, cohort_resources: list[dict[str, Any]], counting_server: Any
) -> None:
    body = hook_body("order-select", "pt01", cohort_resources, fhir_server=counting_server.url)
    body["context"]["patientId"] = "pt02"  # the draft order's subject is still Patient/pt01
    with service(tmp_path, counting_server.url) as client:
        response = call(client, body)
    assert response.status_code == 400
    text = response.json()["issue"][0]["diagnostics"]
    assert "Patient/pt01" in text
    assert "'pt02'" in text
    assert counting_server.requests == 0  # refused before anything was read


def test_wrong_hook_and_unknown_service(
    tmp_path: Path, cohort_resources: list[dict[str, Any]]
) -> None:
    body = hook_body("order-select", "pt01", cohort_resources, fhir_server=None)
    with service(tmp_path, None) as client:
        wrong = call(client, dict(body, hook="patient-view"))
        missing = client.post("/cds-services/nope", json=body, headers=auth("/cds-services/nope"))
        malformed = client.post(SERVICE, json={"hook": "order-select"}, headers=auth(SERVICE))
    assert wrong.status_code == 400
    assert wrong.json()["resourceType"] == "OperationOutcome"
    assert missing.status_code == 404
    assert malformed.status_code == 400
    assert malformed.json()["resourceType"] == "OperationOutcome"


FEEDBACK = SERVICE + "/feedback"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_feedback_is_stored_idempotently_and_survives_a_restart(
    tmp_path: Path,
    fhir_base: str,
    cohort_resources: list[dict[str, Any]],
    backend: str,
    database_urls: dict[str, str],
) -> None:
    urls = database_urls
    if backend not in urls:
        pytest.skip("PostgreSQL runs when CTO_CDS_TEST_DATABASE_URL is set (.ci/run sets it)")
    db = urls[backend]
    body = hook_body("order-select", "pt23", cohort_resources, fhir_server=fhir_base)
    with service(tmp_path, fhir_base, database_url=db) as client:
        card = call(client, body).json()["cards"][0]
        items = [
            {
                "card": card["uuid"],
                "outcome": "overridden",
                "outcomeTimestamp": "2026-11-25T10:00:00Z",
                "overrideReason": {
                    "reason": {
                        "system": "http://cto-cds.org/fhir/CodeSystem/cto-lesion",
                        "code": "override-operator-experience",
                    },
                    "userComment": "planned with Dr B",
                },
            },
        ]
        first = client.post(FEEDBACK, json={"feedback": items * 2}, headers=auth(FEEDBACK))
        again = client.post(FEEDBACK, json={"feedback": items}, headers=auth(FEEDBACK))
        assert first.status_code == again.status_code == 200
        bad = client.post(
            FEEDBACK,
            json={
                "feedback": [
                    {
                        "card": card["uuid"],
                        "outcome": "accepted",
                        "outcomeTimestamp": "2026-11-25T10:00:00Z",
                    }
                ]
            },
            headers=auth(FEEDBACK),
        )
        assert bad.status_code == 400  # accepted needs acceptedSuggestions (CH-20)
    with service(tmp_path, fhir_base, database_url=db) as restarted:
        stored = restarted.portal.call(restarted.app.state.cds.store.feedback_for, card["uuid"])  # type: ignore[union-attr, attr-defined]
    assert len(stored) == 1
    assert stored[0].outcome == "overridden"


# --- local servers for fault and allowlist tests ------------------------------------------------


class _Counting:
    def __init__(self, delay: float = 0.0) -> None:
        self.requests = 0
        self.authorization: list[str | None] = []
        self.delay = delay
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                outer.authorization.append(self.headers.get("Authorization"))
                time.sleep(outer.delay)
                body = b'{"resourceType":"Bundle","type":"searchset","entry":[]}'
                self.send_response(200)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/fhir"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def counting_server() -> Iterator[_Counting]:
    server = _Counting()
    yield server
    server.close()


@pytest.fixture
def slow_server() -> Iterator[str]:
    server = _Counting(delay=2.0)
    yield server.url
    server.close()


def test_the_card_source_link_opens_the_score_page(
    tmp_path: Path, cohort_resources: list[dict[str, Any]]
) -> None:
    prefetch = full_prefetch("pt23", cohort_resources)
    body = hook_body("order-sign", "pt23", cohort_resources, fhir_server=None, prefetch=prefetch)
    with service(tmp_path, None) as client:
        card = call(client, body).json()["cards"][0]
        url = card["source"]["url"]
        assert url.startswith("http://testserver/")
        page = client.get(url.removeprefix("http://testserver"))
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Operator-CTO" in page.text
