"""Schemathesis against the published OpenAPI, with valid client JWTs: no input gives a 5xx."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

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
from tests.integration.service_harness import ES384, ISS, TRUSTED


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
