"""Schemathesis against the published OpenAPI, with valid client JWTs: no input gives a 5xx."""

from __future__ import annotations

import copy
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from cds.demo.ehr import sign_client_jwt
from cds.demo.ports import free_port
from cds.main import create_app
from cds.settings import Settings
from tests.integration.service_harness import ES384, ISS, TRUSTED, full_prefetch, hook_body


@pytest.fixture(scope="module")
def running_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    db = tmp_path_factory.mktemp("openapi") / "service.db"
    app = create_app(
        Settings(public_base_url=base, database_url=f"sqlite+aiosqlite:///{db}"), trusted=TRUSTED
    )
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        try:
            httpx.get(f"{base}/openapi.json", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield base
    server.should_exit = True
    thread.join(timeout=10)


def test_no_server_errors(running_service: str) -> None:
    # Schemathesis's pytest plugin does not run under pytest 9: drive its strategies directly.
    schema = schemathesis.openapi.from_url(f"{running_service}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) == 3
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def no_5xx(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
            token = sign_client_jwt(ES384, ISS, running_service + case.formatted_path)
            case.call_and_validate(
                base_url=running_service,
                headers={"Authorization": f"Bearer {token}"},
                checks=[not_a_server_error],
            )

        no_5xx()


def test_openapi_is_published(running_service: str, tmp_path: Path) -> None:
    doc = httpx.get(f"{running_service}/openapi.json").json()
    assert "/cds-services" in doc["paths"]
    assert "/cds-services/{service_id}/feedback" in doc["paths"]


SERVICE = "/cds-services/operator-cto"
FEEDBACK = SERVICE + "/feedback"
_NESTED = '{"resourceType": "OperationOutcome", "issue": [{"severity": "error", "details": '


def _hostile_hook_bodies(base: dict[str, Any]) -> Iterator[bytes]:
    """Inputs that once gave a 500 (or worse): each must now be a 4xx (docs/spec/cds-hooks-smart.md
    CH-23)."""
    allowed = "http://127.0.0.1:9/fhir"
    for pid in ["pt04\n", "..", "a/../b", "pt\x0004", "pt\u202e04", "x" * 65, 4]:
        body = copy.deepcopy(base)
        body["context"]["patientId"] = pid
        yield json.dumps(body).encode()
    for tail in ["/../admin", "/..%2fadmin", "/%2E%2E", "%5C..", "?a=1", "#f", "/ x", "\n"]:
        body = copy.deepcopy(base)
        body["fhirServer"] = allowed + tail
        yield json.dumps(body).encode()
    for instance in ["a\x00b", "a\ud800b"]:
        yield json.dumps({**base, "hookInstance": instance}).encode()
    for levels in (100, 500):
        nested = _NESTED * levels + "{}" + "}]}" * levels
        yield json.dumps({**base, "prefetch": {"conditions": "@"}}).replace('"@"', nested).encode()


def _hostile_feedback() -> Iterator[bytes]:
    item = {
        "card": "c1",
        "outcome": "overridden",
        "overrideReason": {"userComment": "fine"},
        "outcomeTimestamp": "2026-01-01T00:00:00Z",
    }
    for change in (
        {"overrideReason": {"userComment": "a\x00b"}},
        {"overrideReason": {"userComment": "a\ud800b"}},
        {"overrideReason": {"reason": {"code": "\x00"}}},
        {"card": "\x00"},
        {"outcomeTimestamp": "9999-12-31T23:30:00-05:00"},
        {"outcomeTimestamp": "0001-01-01T00:30:00+01:00"},
    ):
        yield json.dumps({"feedback": [{**item, **change}]}).encode()


def test_hostile_inputs_are_4xx_never_5xx(
    running_service: str, cohort_resources: list[dict[str, Any]]
) -> None:
    prefetch = full_prefetch("pt04", cohort_resources)
    base = hook_body("order-sign", "pt04", cohort_resources, fhir_server=None, prefetch=prefetch)
    calls = [(SERVICE, raw) for raw in _hostile_hook_bodies(base)]
    calls += [(FEEDBACK, raw) for raw in _hostile_feedback()]
    for path, raw in calls:
        token = sign_client_jwt(ES384, ISS, running_service + path)
        response = httpx.post(
            running_service + path,
            content=raw,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        assert 400 <= response.status_code < 500, (path, raw[:120], response.text[:200])
        assert response.json()["resourceType"] == "OperationOutcome"


def test_a_huge_unauthenticated_body_over_real_http_is_refused(running_service: str) -> None:
    def chunks() -> Iterator[bytes]:
        block = b"x" * (1 << 16)
        for _ in range(1600):  # 100 MiB, never all in memory
            yield block

    refused = httpx.post(running_service + SERVICE, content=chunks())
    assert refused.status_code == 401
    # A client announcing 100 MiB and sending a few bytes (httpx will not): 413 at once.
    host, port = running_service.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            f"POST {SERVICE} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {100 << 20}\r\n\r\n{{".encode()
        )
        status_line = sock.recv(4096).split(b"\r\n", 1)[0]
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large"
    assert httpx.get(running_service + "/healthz").status_code == 200
