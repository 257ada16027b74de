"""Save across replicas: two `cto-cds serve` processes on one database (SQLite, and PostgreSQL when
CTO_CDS_TEST_DATABASE_URL is set), one browser session.

While replica A's save waits on the FHIR server, the same session's save at replica B is refused
with 409 and sends nothing; once A is done, B's save finds everything written (nothing to write).
The FHIR server is sekmet (its own, loaded with the cohort: the saves write to it) behind a gate
that holds the first write until the test opens it, so the overlap is certain, not timed.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cds.app.save import csrf_token
from cds.app.session import COOKIE
from cds.demo.fhir_server import load_cohort, running_fhir_server
from cds.demo.ports import free_port
from cds.demo.smart import thread_server
from cds.settings import Settings
from tests.cli.test_app import run
from tests.integration.app_sessions import signed_in
from tests.integration.serve_process import serve_env, serving

SECRET = "replicas-share-this-secret-" + uuid.uuid4().hex
WRITE_SCOPE = "launch openid fhirUser patient/*.cruds user/Practitioner.r"


class Gate:
    """A pass-through to sekmet that holds every write until `opened` is set."""

    def __init__(self, sekmet: str, public: str) -> None:
        self.sekmet, self.public = sekmet, public
        self.reached, self.opened = threading.Event(), threading.Event()
        self.requests = 0
        self.client = httpx.AsyncClient(timeout=60)

    async def forward(self, request: Request) -> Response:
        self.requests += 1
        if request.method in ("POST", "PUT"):
            self.reached.set()
            await asyncio.to_thread(self.opened.wait, 60)
        path = request.path_params.get("path", "")
        keep = ("content-type", "accept", "if-none-exist", "if-match", "prefer")
        answer = await self.client.request(
            request.method,
            f"{self.sekmet}/{path}" if path else self.sekmet,
            params=list(request.query_params.multi_items()),
            content=await request.body(),
            headers={k: v for k, v in request.headers.items() if k.lower() in keep},
        )
        body = answer.content.replace(self.sekmet.encode(), self.public.encode())
        out = {k: v for k, v in answer.headers.items() if k.lower() in ("content-type", "etag")}
        if "location" in answer.headers:
            out["location"] = answer.headers["location"].replace(self.sekmet, self.public)
        return Response(body, status_code=answer.status_code, headers=out)

    def app(self) -> Starlette:
        methods = ["GET", "POST", "PUT"]
        return Starlette(
            routes=[
                Route("/fhir/{path:path}", self.forward, methods=methods),
                Route("/fhir", self.forward, methods=["POST"]),  # a transaction at the base
            ]
        )


async def _signed_in(url: str, fhir: str, patient: str) -> str:
    """A session with every write scope, on `patient`'s order; its cookie value."""
    context = {
        "scope": WRITE_SCOPE,
        "can_write": True,
        "patient": patient,
        "fhirContext": [{"reference": f"ServiceRequest/{patient}-order"}],
    }
    settings = Settings(app_context_secret=SECRET, database_url=url)
    return await signed_in(url, settings, fhir, context, timedelta(minutes=30))


def test_a_save_at_one_replica_makes_the_same_sessions_save_at_the_other_409(
    tmp_path: Path, database_urls: dict[str, str], cohort_resources: list[dict[str, Any]]
) -> None:
    with running_fhir_server(tmp_path) as sekmet, httpx.Client(timeout=60) as client:
        load_cohort(sekmet, cohort_resources, client)
        port = free_port()
        fhir = f"http://127.0.0.1:{port}/fhir"
        # One patient per backend: each run's first save has something to write.
        for (backend, url), patient in zip(database_urls.items(), ("pt05", "pt06"), strict=False):
            gate = Gate(sekmet, fhir)
            with thread_server(gate.app(), port):
                _overlapping_saves(tmp_path / backend, url, fhir, patient, gate)


def _overlapping_saves(workdir: Path, url: str, fhir: str, patient: str, gate: Gate) -> None:
    workdir.mkdir()
    assert run("db", "upgrade", env={"CTO_CDS_DATABASE_URL": url}).returncode == 0
    env = serve_env(
        public_base_url="http://127.0.0.1:8000",  # the balancer's URL, shared by the replicas
        allowed_fhir_servers=fhir,
        database_url=url,
        app_context_secret=SECRET,
        migrate_on_start="false",
        fhir_deadline="20",
    )
    session_id = asyncio.run(_signed_in(url, fhir, patient))
    cookie = {"Cookie": f"{COOKIE}={session_id}"}
    form = {"csrf": csrf_token(SECRET, session_id), "stump": "blunt", "ostial_location": "true"}
    with (
        serving(env, workdir, workdir / "a.log") as a,
        serving(env, workdir, workdir / "b.log") as b,
        httpx.Client(timeout=120) as browser,
        ThreadPoolExecutor(1) as pool,
    ):
        first = pool.submit(browser.post, a + "/app/save", data=form, headers=cookie)
        try:
            assert gate.reached.wait(60), "A's save reached the FHIR server's write"
            seen = gate.requests
            busy = browser.post(b + "/app/save", data=form, headers=cookie)
            assert gate.requests == seen, "B's refused save sent nothing to the FHIR server"
        finally:
            gate.opened.set()
        done = first.result(timeout=120)
        assert busy.status_code == 409, busy.text
        assert "Save in progress" in busy.text
        assert done.status_code == 200, done.text
        assert "finding stump" in done.text

        again = browser.post(b + "/app/save", data=form, headers=cookie)
        assert again.status_code == 200, again.text
        assert "nothing was written" in again.text, "B's slot was free and A's writes are there"
