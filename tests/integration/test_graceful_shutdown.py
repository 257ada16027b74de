"""A pod stopped mid-call (a rolling update, a node drain): SIGTERM to `cto-cds serve` while a hook
call is waiting on a slow FHIR server. The call still gets its card, the card's audit row is
written, the process shuts down cleanly, and it stops accepting connections at once — which is
why the Deployment waits in a preStop hook before the signal (deploy/k8s/deployment.yaml): until the
Service's endpoints drop the pod, the balancer may still send it new calls."""

from __future__ import annotations

import signal
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.load import started
from cds.demo.ehr import EhrKeys, sign_client_jwt
from cds.demo.ports import free_port
from tests.integration.serve_process import ISS, serve_env, served, trust_file
from tests.integration.service_harness import hook_body

pytestmark = pytest.mark.integration

PUBLIC = "http://127.0.0.1:8000"
SERVICE = "/cds-services/operator-cto"
DELAY_MS = 1500  # each FHIR request: the call is still reading when the signal comes


def test_sigterm_mid_call_answers_the_call_audits_it_and_shuts_down_cleanly(
    tmp_path: Path, fhir_base: str, cohort_resources: list[dict[str, Any]]
) -> None:
    port = free_port()
    proxy = f"http://127.0.0.1:{port}"
    # bench/delay_proxy.py in front of the real FHIR server: the slow EHR server.
    delay = {"BENCH_TARGET": fhir_base, "BENCH_SELF": proxy, "BENCH_DELAY_MS": str(DELAY_MS)}
    command = [sys.executable, "-m", "uvicorn", "bench.delay_proxy:app", "--port", str(port)]
    keys = EhrKeys.generate("ES384", kid="shutdown")
    database = tmp_path / "service.db"
    env = serve_env(
        public_base_url=PUBLIC,
        trusted_clients=str(trust_file(tmp_path, keys)),
        database_url=f"sqlite+aiosqlite:///{database}",
        allowed_fhir_servers=proxy,
        fhir_deadline="20",
    )
    body = hook_body("order-select", "pt05", cohort_resources, fhir_server=proxy)
    log = tmp_path / "serve.log"
    answers: list[httpx.Response] = []
    with (
        started("proxy", command, delay, port, tmp_path),
        served(env, tmp_path, log) as (address, process),
    ):

        def call() -> None:
            token = sign_client_jwt(keys, ISS, PUBLIC + SERVICE)
            headers = {"Authorization": f"Bearer {token}"}
            answers.append(httpx.post(address + SERVICE, json=body, headers=headers, timeout=60))

        in_flight = threading.Thread(target=call)
        begin = time.monotonic()
        in_flight.start()
        time.sleep(DELAY_MS / 1000 / 3)  # the call is waiting on its FHIR reads
        process.send_signal(signal.SIGTERM)
        # New connections are refused while the call in flight is still being answered.
        refused = False
        while not refused and in_flight.is_alive():
            try:
                httpx.get(address + "/healthz", timeout=1)
                time.sleep(0.02)
            except httpx.ConnectError:
                refused = True
        in_flight.join(timeout=60)
        exit_code = process.wait(timeout=30)
        took = time.monotonic() - begin
    assert refused, "a new connection was still accepted after SIGTERM"
    assert len(answers) == 1
    (answer,) = answers
    assert answer.status_code == 200, answer.text
    (card,) = answer.json()["cards"]
    assert card["summary"].startswith("Operator-CTO"), card["summary"]
    assert took >= DELAY_MS / 1000  # the call was answered after the signal, not before it
    # uvicorn re-raises the signal once shut down: 143 to the kubelet, a stop it asked for.
    assert exit_code == -signal.SIGTERM, log.read_text()
    assert "Application shutdown complete." in log.read_text()
    # Written before the process ended: the audit queue is flushed at shutdown.
    with sqlite3.connect(database) as db:
        rows = db.execute(
            "SELECT count(*) FROM card_audit WHERE card_uuid = ?", (card["uuid"],)
        ).fetchone()
    assert rows == (1,)
    text = log.read_text()
    assert '"level": "error"' not in text, text
