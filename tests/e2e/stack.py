"""The end-to-end stack, all on free loopback ports: sekmet-fhir with the cohort, the SMART facade in
front of it, the oidc-provider authorization server (node) and cto-cds itself (uvicorn threads).

`python -m tests.e2e.stack` (what `./scripts/demo app` runs) starts it and prints the URLs a person
opens to click through the launch and the page; Ctrl-C stops everything.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import uvicorn

from cds.demo.cohort_data import COHORT_NDJSON, load_ndjson
from cds.demo.fhir_server import load_cohort, running_fhir_server
from cds.demo.ports import free_port
from cds.main import create_app
from cds.settings import Settings
from tests.e2e.facade import facade

AUTHSERVER = Path(__file__).parent / "authserver"
CLIENT_ID = "cto-cds"
DEMO_PATIENT = "pt02"


class StackError(RuntimeError):
    """A component of the stack could not be started (the message says which and why)."""


@dataclass(frozen=True)
class Stack:
    fhir: str
    """The facade's FHIR base: the `iss` the EHR launches with."""
    sekmet: str
    auth_server: str
    app: str

    def launch_url(self, patient: str, order: str | None = None, **extra: Any) -> str:
        """What the test EHR opens: an EHR launch with an opaque `launch` it minted."""
        context = {"patient": patient, "order": order, "need_patient_banner": True} | extra
        launch = base64.urlsafe_b64encode(json.dumps(context).encode()).decode().rstrip("=")
        return f"{self.app}/app/launch?" + urlencode({"iss": self.fhir, "launch": launch})


def node_modules() -> None:
    """`npm ci` once, from the committed package-lock.json."""
    if (AUTHSERVER / "node_modules" / "oidc-provider").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise StackError("npm not found: install Node.js 20+ (apt-get install nodejs npm)")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=AUTHSERVER, check=True)


@contextmanager
def _thread_server(app: Any, port: int) -> Iterator[None]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise StackError(f"uvicorn on port {port} did not start")
        time.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def _auth_server(port: int, fhir: str, app: str, workdir: Path) -> Iterator[str]:
    node = shutil.which("node")
    if node is None:
        raise StackError("node not found: install Node.js 20+")
    node_modules()
    clients = [
        {
            "client_id": CLIENT_ID,
            "token_endpoint_auth_method": "none",
            "redirect_uris": [app + "/app/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        }
    ]
    env = os.environ | {
        "PORT": str(port),
        "FHIR_BASE": fhir,
        "CLIENTS": json.dumps(clients),
        "DEFAULT_PATIENT": DEMO_PATIENT,  # standalone launches (no launch context)
    }
    base = f"http://127.0.0.1:{port}"
    log_path = workdir / "smart-as.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [node, str(AUTHSERVER / "smart-as.mjs")], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 20
            while True:
                if proc.poll() is not None:
                    raise StackError(f"smart-as exited: {log_path.read_text()[-2000:]}")
                try:
                    if httpx.get(base + "/jwks", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise StackError("smart-as not ready after 20 s")
                time.sleep(0.1)
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@contextmanager
def running_stack(workdir: Path) -> Iterator[Stack]:
    with ExitStack() as stack:
        sekmet = stack.enter_context(running_fhir_server(workdir))
        with httpx.Client(timeout=60.0) as client:
            load_cohort(sekmet, load_ndjson(COHORT_NDJSON), client)
        fhir_port, as_port, app_port = free_port(), free_port(), free_port()
        fhir = f"http://127.0.0.1:{fhir_port}/fhir"
        app = f"http://127.0.0.1:{app_port}"
        auth = stack.enter_context(_auth_server(as_port, fhir, app, workdir))
        stack.enter_context(_thread_server(facade(fhir, sekmet, auth), fhir_port))
        settings = Settings(
            public_base_url=app,
            allowed_fhir_servers=[fhir],
            database_url=f"sqlite+aiosqlite:///{workdir / 'app.db'}",
            smart_client_id=CLIENT_ID,
            fhir_deadline=20.0,
        )
        stack.enter_context(_thread_server(create_app(settings), app_port))
        yield Stack(fhir=fhir, sekmet=sekmet, auth_server=auth, app=app)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    import signal
    import tempfile

    signal.signal(signal.SIGTERM, _interrupt)  # a plain kill also stops node and sekmet

    with (
        tempfile.TemporaryDirectory(prefix="cto-cds-demo-app-") as tmp,
        running_stack(Path(tmp)) as s,
    ):
        order = f"ServiceRequest/{DEMO_PATIENT}-order"
        print(f"FHIR server (SMART facade over sekmet): {s.fhir}")
        print(f"SMART authorization server (oidc-provider): {s.auth_server}")
        print(
            f"EHR launch, patient {DEMO_PATIENT}, open in a browser:\n  {s.launch_url(DEMO_PATIENT, order)}"
        )
        print(f"Standalone launch:\n  {s.app}/app/launch?{urlencode({'iss': s.fhir})}")
        print("Ctrl-C stops the servers.", flush=True)
        with suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
