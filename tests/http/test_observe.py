"""/metrics and its token, the request and hook metrics, and the one log line per hook call."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from starlette.types import Scope

from cds.demo.cohort_data import COHORT_NDJSON, load_ndjson
from cds.demo.ehr import hook_request
from cds.http.observe import UNMATCHED, route_label
from cds.metrics import REGISTRY
from cds.settings import Settings
from tests.http.service import FEEDBACK, SERVICE, break_database, running
from tests.integration.service_harness import auth, full_prefetch, settings

pytestmark = pytest.mark.anyio
COHORT = load_ndjson(COHORT_NDJSON)
TOKEN = "metrics-token-0123456789"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def cto_body(patient: str, hook: str = "order-select") -> dict[str, Any]:
    order = next(
        r
        for r in COHORT
        if r["resourceType"] == "ServiceRequest"
        and r["subject"]["reference"] == f"Patient/{patient}"
    )
    return hook_request(
        hook,  # type: ignore[arg-type]
        order=order,
        patient_id=patient,
        prefetch=full_prefetch(patient, COHORT),
        hook_instance=str(uuid.uuid4()),
    )


def elsewhere(tmp: Path, **extra: Any) -> Settings:
    """Outside development: https, a real secret and a trust file are required."""
    trust = tmp / "trusted.yaml"
    trust.write_text("- iss: https://ehr.example.org\n  jwks_url: https://ehr.example.org/jwks\n")
    return Settings(
        environment="production",
        public_base_url="https://cds.example.org",
        app_context_secret="a-production-secret-0123456789abcdef",
        trusted_clients=trust,
        database_url=f"sqlite+aiosqlite:///{tmp / 'service.db'}",
        **extra,
    )


async def test_metrics_are_open_in_development_and_in_the_prometheus_format(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as (_, client):
        await client.get("/healthz")
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    assert 'cto_cds_http_requests_total{method="GET",route="/healthz",status="200"}' in (
        response.text
    )
    assert "# TYPE cto_cds_hook_duration_seconds histogram" in response.text


async def test_outside_development_metrics_without_a_token_are_disabled_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "cds.http")
    async with running(tmp_path, elsewhere(tmp_path)) as (_, client):
        response = await client.get("/metrics")
        unknown = await client.get("/no-such-page")
    assert response.status_code == 404
    assert response.json() == unknown.json()  # indistinguishable from any unknown path
    assert "/metrics is disabled: set CTO_CDS_METRICS_TOKEN" in caplog.text


@pytest.mark.parametrize("environment", ["development", "production"])
async def test_with_a_token_metrics_need_exactly_that_bearer_token(
    tmp_path: Path, environment: str, caplog: pytest.LogCaptureFixture
) -> None:
    if environment == "production":
        config = elsewhere(tmp_path, metrics_token=TOKEN)
    else:
        config = settings(tmp_path, None, metrics_token=TOKEN)
    async with running(tmp_path, config) as (_, client):
        missing = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}x"})
        right = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert (missing.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    assert missing.content == b""
    assert "cto_cds_http_requests_total" in right.text
    assert "disabled" not in caplog.text
    assert TOKEN not in right.text


def test_a_short_metrics_token_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValidationError, match="metrics_token"):
        Settings(metrics_token="short")


async def test_a_hook_call_with_a_card_is_counted_by_band_and_logged_in_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "cds.hook")
    body = cto_body("pt01")
    route = "/cds-services/{service_id}"
    before = (
        sample("cto_cds_hook_calls_total", hook="order-select", outcome="card"),
        sample("cto_cds_cards_total", band="easy"),
        sample("cto_cds_http_requests_total", route=route, method="POST", status="200"),
        sample("cto_cds_hook_duration_seconds_count", hook="order-select", outcome="card"),
    )
    async with running(tmp_path) as (_, client):
        response = await client.post(SERVICE, json=body, headers=auth(SERVICE))
    assert response.status_code == 200
    assert "easy" in response.json()["cards"][0]["summary"].lower()
    after = (
        sample("cto_cds_hook_calls_total", hook="order-select", outcome="card"),
        sample("cto_cds_cards_total", band="easy"),
        sample("cto_cds_http_requests_total", route=route, method="POST", status="200"),
        sample("cto_cds_hook_duration_seconds_count", hook="order-select", outcome="card"),
    )
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1, 1]
    (line,) = [r for r in caplog.records if r.name == "cds.hook"]
    fields = line.fields  # type: ignore[attr-defined]
    assert fields["hookInstance"] == body["hookInstance"]
    assert (fields["hook"], fields["outcome"], fields["band"], fields["cards"]) == (
        "order-select",
        "card",
        "easy",
        1,
    )
    assert fields["duration_ms"] > 0
    assert "pt01" not in str(fields)


async def test_no_card_and_errors_are_outcomes_of_their_own(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "cds.hook")
    not_cto = cto_body("pt02", "order-sign")
    not_cto["context"]["draftOrders"]["entry"][0]["resource"]["code"] = {
        "coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "93458"}]
    }
    other_patient = cto_body("pt02", "order-sign")
    other_patient["context"]["patientId"] = "pt03"
    before = {
        outcome: sample("cto_cds_hook_calls_total", hook="order-sign", outcome=outcome)
        for outcome in ("no_card", "error")
    }
    async with running(tmp_path) as (_, client):
        none = await client.post(SERVICE, json=not_cto, headers=auth(SERVICE))
        refused = await client.post(SERVICE, json=other_patient, headers=auth(SERVICE))
    assert (none.status_code, none.json()) == (200, {"cards": []})
    assert refused.status_code == 400
    for outcome in ("no_card", "error"):
        now = sample("cto_cds_hook_calls_total", hook="order-sign", outcome=outcome)
        assert now - before[outcome] == 1, outcome
    lines = [r.fields for r in caplog.records if r.name == "cds.hook"]  # type: ignore[attr-defined]
    assert [(f["outcome"], f["band"], f.get("error")) for f in lines] == [
        ("no_card", None, None),
        ("error", None, "ContextError"),
    ]


async def test_refusals_feedback_and_database_errors_are_counted(tmp_path: Path) -> None:
    before = (
        sample("cto_cds_jwt_refusals_total", reason="missing_token"),
        sample("cto_cds_jwt_refusals_total", reason="replayed"),
        sample(
            "cto_cds_http_requests_total",
            route="/cds-services/{service_id}",
            method="POST",
            status="401",
        ),
        sample("cto_cds_feedback_total", outcome="overridden"),
        sample("cto_cds_database_errors_total", during="jti"),
    )
    async with running(tmp_path) as (app, client):
        assert (await client.post(SERVICE, json={})).status_code == 401
        card = (await client.post(SERVICE, json=cto_body("pt04"), headers=auth(SERVICE))).json()
        uuid_ = card["cards"][0]["uuid"]
        reason = card["cards"][0]["overrideReasons"][0]
        item = {
            "card": uuid_,
            "outcome": "overridden",
            "outcomeTimestamp": "2026-01-01T10:00:00Z",
            "overrideReason": {"reason": reason},
        }
        headers = auth(FEEDBACK)
        assert (await client.post(FEEDBACK, json={"feedback": [item]}, headers=headers)).is_success
        replay = await client.post(FEEDBACK, json={"feedback": [item]}, headers=headers)
        assert replay.status_code == 401
        await break_database(app, "postgresql+asyncpg://nobody@127.0.0.1:9/none")
        assert (await client.post(SERVICE, json={}, headers=auth(SERVICE))).status_code == 503
    after = (
        sample("cto_cds_jwt_refusals_total", reason="missing_token"),
        sample("cto_cds_jwt_refusals_total", reason="replayed"),
        sample(
            "cto_cds_http_requests_total",
            route="/cds-services/{service_id}",
            method="POST",
            status="401",
        ),
        sample("cto_cds_feedback_total", outcome="overridden"),
        sample("cto_cds_database_errors_total", during="jti"),
    )
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1, 1, 1]


async def test_a_failed_audit_write_is_a_database_error(tmp_path: Path) -> None:
    before = sample("cto_cds_database_errors_total", during="audit")
    async with running(tmp_path) as (app, client):
        store = app.state.cds.store

        async def down(*args: object, **kwargs: object) -> None:
            raise ConnectionRefusedError("database down")

        store.save_cards = down  # the write-behind queue writes in batches
        response = await client.post(SERVICE, json=cto_body("pt05"), headers=auth(SERVICE))
    assert response.status_code == 200  # the card still goes out
    assert sample("cto_cds_database_errors_total", during="audit") - before == 1


@pytest.mark.parametrize(
    ("path", "label"),
    [
        ("/cds-services", "/cds-services"),
        ("/cds-services/operator-cto", "/cds-services/{service_id}"),
        ("/cds-services/x/feedback", "/cds-services/{service_id}/feedback"),
        ("/Patient/pt01", UNMATCHED),  # never a raw path: it may name someone
    ],
)
def test_requests_refused_before_routing_get_a_bounded_route_label(path: str, label: str) -> None:
    scope: Scope = {"type": "http", "path": path, "method": "POST"}
    assert route_label(scope) == label


async def test_unknown_paths_are_counted_as_unmatched(tmp_path: Path) -> None:
    before = sample("cto_cds_http_requests_total", route=UNMATCHED, method="GET", status="404")
    odd = sample("cto_cds_http_requests_total", route=UNMATCHED, method="other", status="404")
    async with running(tmp_path) as (_, client):
        assert (await client.get("/Patient/pt01")).status_code == 404
        assert (await client.request("XPT01", "/Patient/pt01")).status_code == 404
    after = sample("cto_cds_http_requests_total", route=UNMATCHED, method="GET", status="404")
    assert after - before == 1
    assert (
        sample("cto_cds_http_requests_total", route=UNMATCHED, method="other", status="404") - odd
        == 1
    )
    assert 'route="/Patient/pt01"' not in (await _text())


async def _text() -> str:
    from cds.metrics import exposition

    return exposition()[0].decode()


async def test_non_http_scopes_pass_through_uncounted() -> None:
    from starlette.types import Message, Receive, Send

    from cds.http.observe import Observe

    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        return None

    before = _text_count()
    await Observe(app)({"type": "lifespan"}, receive, send)
    assert seen == ["lifespan"]
    assert _text_count() == before


def _text_count() -> float:
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "cto_cds_http_requests"
        for sample in metric.samples
        if sample.name.endswith("_total")
    )
