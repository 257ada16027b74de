"""A database outage under load: 503 + Retry-After (the EHR retries), the card still answered when
only its audit fails, the jti never accepted unchecked, and no PHI in the log."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from cds.demo.cohort_data import COHORT_NDJSON, load_ndjson
from cds.store import audit_queue
from tests.http.service import FEEDBACK, SERVICE, break_database, running
from tests.integration.service_harness import auth, full_prefetch, hook_body

pytestmark = pytest.mark.anyio

PATIENT = "pt23"
# Nothing listens on port 1: PostgreSQL "refusing connections". The SQLite file's directory is
# deleted under the running service.
OUTAGES = {
    "postgresql": "postgresql+asyncpg://postgres@127.0.0.1:1/test",
    "sqlite": "sqlite+aiosqlite:///{tmp}/gone/service.db",
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def body() -> dict[str, Any]:
    cohort = load_ndjson(COHORT_NDJSON)
    return hook_body(
        "order-sign", PATIENT, cohort, fhir_server=None, prefetch=full_prefetch(PATIENT, cohort)
    )


async def outage(app: Any, kind: str, tmp: Path) -> None:
    gone = tmp / "gone"
    gone.mkdir()
    await break_database(app, OUTAGES[kind].format(tmp=tmp), remove=gone)


def _slow_step(record: logging.LogRecord) -> bool:
    """asyncio's debug mode (`python -X dev`) warns of every step over 0.1 s: timing, not the
    service's log."""
    return record.name == "asyncio" and str(record.msg).startswith("Executing ")


def assert_no_phi(caplog: pytest.LogCaptureFixture, body: dict[str, Any]) -> None:
    text = caplog.text
    assert PATIENT not in text
    assert body["hookInstance"] not in text
    assert "Traceback" not in text


@pytest.mark.parametrize("kind", list(OUTAGES))
async def test_jti_check_on_a_dead_database_is_503_never_accepted(
    tmp_path: Path, kind: str, body: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with running(tmp_path) as (app, client):
        await outage(app, kind, tmp_path)
        # Under load: every concurrent call gets its 503, none a 500 or a reset.
        responses = await asyncio.gather(
            *(client.post(SERVICE, json=body, headers=auth(SERVICE)) for _ in range(20))
        )
    for response in responses:
        assert response.status_code == 503
        assert int(response.headers["retry-after"]) > 0
        assert response.json()["issue"][0]["code"] == "transient"
    assert_no_phi(caplog, body)
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING and not _slow_step(r)]
    assert len(problems) == len(responses)  # one line per refusal
    assert all(r.exc_info is None for r in problems)  # no traceback


@pytest.mark.parametrize("kind", list(OUTAGES))
async def test_the_card_survives_a_failed_audit_write_and_feedback_is_503(
    tmp_path: Path,
    kind: str,
    body: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(audit_queue, "RETRY_DELAYS", (0.01, 0.02))  # the outage outlasts them
    async with running(tmp_path) as (app, client):
        state = app.state.cds
        # Only the store breaks; the jti check keeps a working replay store.
        replay = state.verifier._replay
        await outage(app, kind, tmp_path)
        state.verifier._replay = replay
        card = await client.post(SERVICE, json=body, headers=auth(SERVICE))
        item = {
            "card": card.json()["cards"][0]["uuid"],
            "outcome": "overridden",
            "overrideReason": {"userComment": "not now"},
            "outcomeTimestamp": "2026-03-01T12:00:00Z",
        }
        feedback = await client.post(FEEDBACK, json={"feedback": [item]}, headers=auth(FEEDBACK))
        ready = await client.get("/readyz")
        # The replay store is the one `outage` closed, reopened by the jti check: the service's
        # shutdown closes the store that replaced it, so this one is the test's to close.
        await replay.close()
    assert card.status_code == 200
    assert card.json()["cards"][0]["summary"].startswith("Operator-CTO")
    # The card's audit row and its appContext handle are one write behind the response, tried
    # again while the outage lasts, then lost together and counted once (the app opened from this
    # card would show the record as read now).
    assert state.audit_failures == 1
    assert caplog.text.count("next attempt in") == 2
    assert "audit write save_card failed" in caplog.text
    assert feedback.status_code == 503
    assert feedback.headers["retry-after"]
    assert ready.status_code == 503
    assert_no_phi(caplog, body)


async def test_a_certificate_that_is_no_certificate_is_503_not_500(
    tmp_path: Path, body: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # asyncpg reads PGSSLROOTCERT for `ssl=verify-full` at each connect; its ssl.SSLError escaped
    # every handler (a 500 with a traceback) where an unreachable server is a 503.
    root = tmp_path / "root.crt"
    root.write_text("not a certificate\n")
    monkeypatch.setenv("PGSSLROOTCERT", str(root))
    async with running(tmp_path) as (app, client):
        await break_database(app, OUTAGES["postgresql"] + "?ssl=verify-full")
        response = await client.post(SERVICE, json=body, headers=auth(SERVICE))
    assert response.status_code == 503
    assert response.json()["issue"][0]["code"] == "transient"
