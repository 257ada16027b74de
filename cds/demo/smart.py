"""The local SMART EHR of the demo and the end-to-end tests: a real authorization server
(oidc-provider, node; docs/spec/test-servers.md §2.4) and the SMART facade in front of sekmet-fhir
as the EHR's FHIR endpoint. One module for `./scripts/demo --keep`, `./scripts/demo app` and
tests/e2e, so the three run the same stack.

The node project stays in tests/e2e/authserver (one copy, also mounted by deploy/compose.yaml);
like sekmet's `.venv-fhir` it is part of a checkout, not of the wheel. `unavailable()` says in
one line why it cannot start (no node, or no npm to install its packages), so the demo can go on
without the app's launch URL.
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
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import uvicorn

from cds.demo.children import stop_child
from cds.demo.fhir_server import REPO_ROOT
from cds.demo.ports import free_port
from cds.demo.smart_facade import facade

AUTHSERVER = REPO_ROOT / "tests" / "e2e" / "authserver"
CLIENT_ID = "cto-cds"
DEMO_PATIENT = "pt02"
"""Who a standalone launch signs in as (the authorization server has no patient picker)."""


class SmartUnavailableError(RuntimeError):
    """The local SMART EHR could not be started (the message says which part and why)."""


def unavailable() -> str | None:
    """None when the authorization server can start, else the one-line reason."""
    if not (AUTHSERVER / "smart-as.mjs").is_file():
        return f"the SMART authorization server is not in this installation ({AUTHSERVER})"
    if shutil.which("node") is None:
        return "node not found: install Node.js 20+ (apt-get install nodejs npm)"
    if not (AUTHSERVER / "node_modules" / "oidc-provider").is_dir() and not shutil.which("npm"):
        return "npm not found to install the authorization server's packages (scripts/e2e-setup)"
    return None


def node_modules() -> None:
    """`npm ci` once, from the committed package-lock.json."""
    if (AUTHSERVER / "node_modules" / "oidc-provider").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise SmartUnavailableError("npm not found: install Node.js 20+ (apt-get install npm)")
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=AUTHSERVER, check=True
    )


@contextmanager
def thread_server(app: Any, port: int) -> Iterator[None]:
    """An ASGI app under uvicorn on 127.0.0.1:`port`, in a thread (no signal handlers of its own)."""
    server = uvicorn.Server(
        # log_config=None: an embedded server leaves the process's logging configuration alone.
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, log_level="warning", access_log=False
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise SmartUnavailableError(f"uvicorn on port {port} did not start")
        time.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def auth_server(port: int, fhir: str, app: str, workdir: Path) -> Iterator[str]:
    """oidc-provider on `port` for the FHIR base `fhir` and the app at `app`; yields its URL.

    Stopped with SIGTERM (then SIGKILL) on the way out, whatever ended the block."""
    why = unavailable()
    if why is not None:
        raise SmartUnavailableError(why)
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
    variables = os.environ | {
        "PORT": str(port),
        "FHIR_BASE": fhir,
        "CLIENTS": json.dumps(clients),
        "DEFAULT_PATIENT": DEMO_PATIENT,
    }
    base = f"http://127.0.0.1:{port}"
    log_path = workdir / "smart-as.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(shutil.which("node")), str(AUTHSERVER / "smart-as.mjs")],
            env=variables,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_ready(proc, base, log_path)
            yield base
        finally:
            stop_child(proc)


def _wait_ready(proc: subprocess.Popen[bytes], base: str, log_path: Path) -> None:
    deadline = time.monotonic() + 20
    while True:
        if proc.poll() is not None:
            raise SmartUnavailableError(f"smart-as exited: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(base + "/jwks", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise SmartUnavailableError("smart-as not ready after 20 s")
        time.sleep(0.1)


@dataclass(frozen=True)
class SmartEhr:
    fhir: str
    """The facade's FHIR base: the `iss` the EHR launches with."""
    auth_server: str

    def launch_url(self, app: str, patient: str, order: str | None = None, **extra: Any) -> str:
        """What the test EHR opens: an EHR launch with an opaque `launch` it minted (the
        authorization server decodes it: base64url JSON of the launch context)."""
        context = {"patient": patient, "order": order, "need_patient_banner": True} | extra
        launch = base64.urlsafe_b64encode(json.dumps(context).encode()).decode().rstrip("=")
        return f"{app}/app/launch?" + urlencode({"iss": self.fhir, "launch": launch})

    def standalone_url(self, app: str) -> str:
        return f"{app}/app/launch?" + urlencode({"iss": self.fhir})


@contextmanager
def running_smart_ehr(workdir: Path, sekmet: str, app: str) -> Iterator[SmartEhr]:
    """The authorization server and the SMART facade over `sekmet`, for the app served at `app`."""
    with ExitStack() as stack:
        fhir_port, as_port = free_port(), free_port()
        fhir = f"http://127.0.0.1:{fhir_port}/fhir"
        auth = stack.enter_context(auth_server(as_port, fhir, app, workdir))
        stack.enter_context(thread_server(facade(fhir, sekmet, auth), fhir_port))
        yield SmartEhr(fhir=fhir, auth_server=auth)
