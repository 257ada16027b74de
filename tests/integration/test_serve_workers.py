"""`cto-cds serve --workers 2`: two worker processes under one port, each answering hook calls with
the same settings; the database is migrated once, by the parent, before they start."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from cds.demo.ehr import EhrKeys, sign_client_jwt
from tests.integration.serve_process import ISS, serve_env, serving, trust_file
from tests.integration.service_harness import full_prefetch, hook_body

pytestmark = pytest.mark.integration
SERVICE = "/cds-services/operator-cto"


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


PUBLIC = "http://127.0.0.1:8000"


def _setup(
    tmp_path: Path, keys: EhrKeys, cohort_resources: list[dict[str, Any]]
) -> tuple[dict[str, str], dict[str, Any]]:
    """The workers' environment (SQLite in tmp_path/workers.db, `keys` trusted) and an
    order-select body for pt05's CTO-PCI order with its full prefetch."""
    env = serve_env(
        public_base_url=PUBLIC,
        trusted_clients=str(trust_file(tmp_path, keys)),
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'workers.db'}",
    )
    prefetch = full_prefetch("pt05", cohort_resources)
    body = hook_body("order-select", "pt05", cohort_resources, fhir_server=None, prefetch=prefetch)
    return env, body


def test_two_workers_serve_hook_calls(
    tmp_path: Path, cohort_resources: list[dict[str, Any]]
) -> None:
    keys = EhrKeys.generate("ES384", kid="workers")
    env, body = _setup(tmp_path, keys, cohort_resources)
    log = tmp_path / "serve.log"
    with serving(env, tmp_path, log, ["--workers", "2"]) as address:
        parent = next(
            int(p.name)
            for p in Path("/proc").iterdir()
            if p.name.isdigit() and address.rsplit(":", 1)[1] in _cmdline(p)
        )
        workers = [c for c in _children(parent) if "spawn_main" in _cmdline(Path(f"/proc/{c}"))]
        with httpx.Client(base_url=address, timeout=30) as client:
            answers = [
                client.post(
                    SERVICE,
                    json=body,
                    headers={
                        "Authorization": f"Bearer {sign_client_jwt(keys, ISS, PUBLIC + SERVICE)}"
                    },
                )
                for _ in range(6)
            ]
    assert len(workers) == 2, log.read_text()
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert answer.json()["cards"][0]["summary"].startswith("Operator-CTO")


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


def test_two_workers_on_one_sqlite_file_keep_every_write_once(
    tmp_path: Path, cohort_resources: list[dict[str, Any]]
) -> None:
    """Concurrent calls at two workers sharing one SQLite file: each worker writes its jti and
    card rows on a direct connection that never waits for the file's lock and falls back to its
    pooled one when the other worker holds it (cds/store/sqlite_direct.py). Nothing may be lost,
    doubled or refused: one jti row per call, one audit row and one handle per card, and a token
    replayed at either worker is refused."""
    keys = EhrKeys.generate("ES384", kid="workers")
    env, body = _setup(tmp_path, keys, cohort_resources)
    path = tmp_path / "workers.db"
    tokens = [sign_client_jwt(keys, ISS, PUBLIC + SERVICE) for _ in range(120)]

    async def call_all(address: str) -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=12)
        async with httpx.AsyncClient(base_url=address, timeout=60, limits=limits) as client:
            return await asyncio.gather(
                *(
                    client.post(SERVICE, json=body, headers={"Authorization": f"Bearer {t}"})
                    for t in tokens
                )
            )

    log = tmp_path / "serve.log"
    with serving(env, tmp_path, log, ["--workers", "2"]) as address:
        answers = asyncio.run(call_all(address))
        replays = [  # a new connection each: whichever worker takes it, the file refuses
            httpx.post(
                address + SERVICE,
                json=body,
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            for token in tokens[:4]
        ]
    assert [a.status_code for a in answers] == [200] * len(tokens), log.read_text()[-2000:]
    assert [r.status_code for r in replays] == [401] * 4
    cards = {a.json()["cards"][0]["uuid"] for a in answers}
    with closing(sqlite3.connect(path)) as db:
        audited = [u for (u,) in db.execute("SELECT card_uuid FROM card_audit")]
        handles = [u for (u,) in db.execute("SELECT card_uuid FROM app_context_handle")]
        jtis = db.execute("SELECT COUNT(*) FROM seen_jti").fetchone()[0]
    assert sorted(audited) == sorted(handles) == sorted(cards)  # each once, none lost
    assert jtis == len(tokens)


def _hook_calls(metrics: str) -> float:
    """`cto_cds_hook_calls_total` over every label set, as one scrape reports it."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("cto_cds_hook_calls_total{")
    )


def test_every_scrape_of_two_workers_counts_both(
    tmp_path: Path, cohort_resources: list[dict[str, Any]]
) -> None:
    """A scrape reaches whichever worker accepts it: each must report the calls of both (a
    metrics directory `serve` makes for the run, then removes)."""
    keys = EhrKeys.generate("ES384", kid="workers")
    env, body = _setup(tmp_path, keys, cohort_resources)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env["CTO_CDS_METRICS_TOKEN"] = token = "metrics-token-0123456789"
    env["TMPDIR"] = str(tmp_path)  # where `serve` makes the metrics directory
    calls = 12
    with serving(env, tmp_path, tmp_path / "serve.log", ["--workers", "2"]) as address:
        made = sorted(p.name for p in tmp_path.glob("cto-cds-metrics-*"))
        for _ in range(calls):  # a connection each, so both workers take some
            answer = httpx.post(
                address + SERVICE,
                json=body,
                headers={"Authorization": f"Bearer {sign_client_jwt(keys, ISS, PUBLIC + SERVICE)}"},
                timeout=30,
            )
            assert answer.status_code == 200, answer.text
        scrapes = [
            httpx.get(
                address + "/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=30
            )
            for _ in range(8)
        ]
    assert len(made) == 1
    assert [s.status_code for s in scrapes] == [200] * 8
    # Without the shared directory each scrape said 7 of the 12 (one worker's count).
    assert [_hook_calls(s.text) for s in scrapes] == [calls] * 8
    assert not list(tmp_path.glob("cto-cds-metrics-*"))  # removed with the run
