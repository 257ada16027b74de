"""The end-to-end stack, all on free loopback ports: sekmet-fhir with the cohort, the local SMART
EHR of cds/demo/smart.py (oidc-provider and the SMART facade) and cto-cds itself (uvicorn thread).

`python -m tests.e2e.stack` (what `./scripts/demo app` runs) starts it and prints the URLs a person
opens to click through the launch and the page; Ctrl-C (or a plain kill) stops everything.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from cds.demo.cohort_data import COHORT_NDJSON, load_ndjson
from cds.demo.fhir_server import load_cohort, running_fhir_server
from cds.demo.ports import free_port
from cds.demo.smart import (
    AUTHSERVER,
    CLIENT_ID,
    DEMO_PATIENT,
    SmartEhr,
    running_smart_ehr,
    thread_server,
)
from cds.main import create_app
from cds.settings import Settings

__all__ = ["AUTHSERVER", "DEMO_PATIENT", "Stack", "running_stack"]


@dataclass(frozen=True)
class Stack:
    fhir: str
    """The facade's FHIR base: the `iss` the EHR launches with."""
    sekmet: str
    auth_server: str
    app: str

    def launch_url(self, patient: str, order: str | None = None, **extra: Any) -> str:
        """What the test EHR opens: an EHR launch with an opaque `launch` it minted."""
        ehr = SmartEhr(fhir=self.fhir, auth_server=self.auth_server)
        return ehr.launch_url(self.app, patient, order, **extra)


@contextmanager
def running_stack(workdir: Path) -> Iterator[Stack]:
    with ExitStack() as stack:
        sekmet = stack.enter_context(running_fhir_server(workdir))
        with httpx.Client(timeout=60.0) as client:
            load_cohort(sekmet, load_ndjson(COHORT_NDJSON), client)
        app_port = free_port()
        app = f"http://127.0.0.1:{app_port}"
        ehr = stack.enter_context(running_smart_ehr(workdir, sekmet, app))
        settings = Settings(
            public_base_url=app,
            allowed_fhir_servers=[ehr.fhir],
            database_url=f"sqlite+aiosqlite:///{workdir / 'app.db'}",
            smart_client_id=CLIENT_ID,
            fhir_deadline=20.0,
        )
        stack.enter_context(thread_server(create_app(settings), app_port))
        yield Stack(fhir=ehr.fhir, sekmet=sekmet, auth_server=ehr.auth_server, app=app)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    import signal
    import tempfile
    import threading

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
        ehr = SmartEhr(fhir=s.fhir, auth_server=s.auth_server)
        print(f"Standalone launch:\n  {ehr.standalone_url(s.app)}")
        print("Ctrl-C stops the servers.", flush=True)
        with suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
