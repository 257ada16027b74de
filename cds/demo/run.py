"""`cto-cds demo`: the whole product on one machine.

A real FHIR R4 server (sekmet-fhir) loaded with the synthetic cohort; the CDS Hooks service on a
loopback port; an EHR-like client that signs ES384 client JWTs, discovers the service and sends an
order-select hook for a few CTO-PCI orders (the patient prefetched, the rest read by the service from
the FHIR server); each whole card printed (detail, suggestions, links, override reasons) as a
clinician would see it; one feedback sent. With `keep`, the stack stays up with its URLs printed
until Ctrl-C, so a person can try `cto-cds score --fhir`, a browser or a CDS Hooks sandbox, and it
also runs the local SMART EHR (cds/demo/smart.py: a real authorization server and a SMART facade
over the same FHIR server) and prints an EHR-launch URL of the SMART app: launch → page → Save in a
browser. Only with `keep`: the default run stays short and ends by itself, and a URL printed by a
run that has already stopped would lead nowhere. Without node/npm, one line says why there is no
app URL and the rest runs as usual.
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from rich.console import Console, Group, RenderableType
from rich.markdown import Markdown
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from cds.auth.trust import TrustedClient
from cds.demo.cohort_data import COHORT_NDJSON, Resource, load_ndjson
from cds.demo.ehr import EhrKeys, order_select_request, sign_client_jwt
from cds.demo.fhir_server import load_cohort, running_fhir_server
from cds.demo.ports import free_port
from cds.demo.smart import CLIENT_ID, SmartEhr, SmartUnavailableError, running_smart_ehr
from cds.main import create_app
from cds.settings import Settings

# An easy lesion with an expert, a CABG to the target with an operator at the thresholds, a newcomer,
# a difficult lesion, and a record with almost nothing documented.
DEFAULT_PATIENTS = ("pt01", "pt04", "pt08", "pt23", "pt25")
EHR_ISS = "https://ehr.demo.local"
SERVICE = "/cds-services/operator-cto"
_STYLE = {"info": "green", "warning": "yellow", "critical": "red"}


@contextmanager
def running_service(settings: Settings, trusted: list[TrustedClient]) -> Iterator[str]:
    """The CDS Hooks service under uvicorn on a loopback port; yields its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, trusted),
            host="127.0.0.1",
            port=int(settings.public_base_url.rsplit(":", 1)[1]),
            log_config=None,  # embedded: the process's logging configuration stays as it is
            log_level="warning",
            access_log=False,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the CDS service did not start")
        time.sleep(0.05)
    try:
        yield settings.public_base_url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class UnknownPatientError(ValueError):
    """A `--patient` that is not in the demo cohort (the message lists the valid ids)."""


def cohort_patients(resources: Sequence[Resource]) -> list[str]:
    """Ids of the cohort patients that have a CTO-PCI order, in order."""
    return [
        r["subject"]["reference"].removeprefix("Patient/")
        for r in resources
        if r["resourceType"] == "ServiceRequest"
    ]


def check_patients(patients: Sequence[str], resources: Sequence[Resource]) -> None:
    """Refuse unknown ids before anything starts (a typo must not cost a server start-up)."""
    valid = cohort_patients(resources)
    unknown = [p for p in patients if p not in valid]
    if unknown:
        raise UnknownPatientError(
            f"unknown demo patient {', '.join(unknown)}; valid ids: {', '.join(valid)}"
        )


def card_renderable(patient: str, card: dict[str, Any]) -> Panel:
    """The whole card as an EHR would show it: detail, suggestions, links, override reasons."""
    parts: list[RenderableType] = [Markdown(card.get("detail", ""))]
    for suggestion in card.get("suggestions", []):
        recommended = " (recommended)" if suggestion.get("isRecommended") else ""
        lines = [f"Suggestion{recommended}: {suggestion['label']}"]
        for action in suggestion.get("actions", []):
            kind = action.get("resource", {}).get("resourceType", "")
            lines.append(f"  {action['type']} {kind}: {action.get('description', '')}")
        parts.append(Text("\n".join(lines), style="bold"))
    for link in card.get("links", []):
        parts.append(Text(f"Link ({link['type']}): {link['label']} → {link['url']}"))
    reasons = [r.get("display", r.get("code", "")) for r in card.get("overrideReasons", [])]
    if reasons:
        parts.append(Text("Override reasons: " + "; ".join(reasons), style="dim"))
    return Panel(
        Group(*parts),
        title=f"{patient}: {card['summary']}",
        subtitle=f"{card['indicator']} · {card['source']['label']}",
        border_style=_STYLE.get(card["indicator"], "white"),
    )


def _load_with_progress(console: Console, fhir: str, resources: Sequence[Resource]) -> int:
    columns = (
        TextColumn("loading the cohort"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with (
        Progress(*columns, console=console, transient=True) as progress,
        httpx.Client(timeout=60) as client,
    ):
        task = progress.add_task("load", total=len(resources))
        counts = load_cohort(fhir, resources, client, lambda n: progress.advance(task, n))
    return sum(counts.values())


def wait_for_ctrl_c(console: Console, urls: dict[str, str]) -> None:
    """Print where everything runs, then keep it running until Ctrl-C (or SIGTERM)."""
    # The Ctrl-C the last line invites may arrive while it is still being written (the reader acts
    # on it at once): it is caught from the first line on, or the demo would exit 130 at times.
    try:
        for name, url in urls.items():
            console.print(f"{name}: {url}", soft_wrap=True, markup=False, highlight=False)
        console.print("the stack keeps running: press Ctrl-C to stop it")
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        console.print("stopping")


def run_demo(
    patients: Sequence[str] = DEFAULT_PATIENTS,
    console: Console | None = None,
    keep: bool = False,
) -> int:
    console = console or Console()
    resources = load_ndjson(COHORT_NDJSON)
    check_patients(patients, resources)
    keys = EhrKeys.generate("ES384", kid="demo-ehr")
    trusted = [TrustedClient(iss=EHR_ISS, jwks=keys.jwks())]
    with tempfile.TemporaryDirectory(prefix="cto-cds-demo-") as workdir:
        console.print("starting a local FHIR R4 server (sekmet-fhir) …")
        with running_fhir_server(Path(workdir)) as fhir:
            loaded = _load_with_progress(console, fhir, resources)
            console.print(f"FHIR server {fhir}: loaded {loaded} resources")
            app = f"http://127.0.0.1:{free_port()}"
            with ExitStack() as stack:
                smart = _smart_ehr(console, stack, Path(workdir), fhir, app) if keep else None
                settings = Settings(
                    public_base_url=app,
                    database_url=f"sqlite+aiosqlite:///{Path(workdir) / 'cds.db'}",
                    allowed_fhir_servers=[fhir] + ([smart.fhir] if smart else []),
                    smart_client_id=CLIENT_ID,
                )
                base = stack.enter_context(running_service(settings, trusted))
                ehr = stack.enter_context(httpx.Client(timeout=30))

                def signed(path: str) -> dict[str, str]:
                    return {
                        "Authorization": f"Bearer {sign_client_jwt(keys, EHR_ISS, base + path)}"
                    }

                services = ehr.get(f"{base}/cds-services", headers=signed("/cds-services")).json()
                console.print(
                    f"CDS service {base}: discovered "
                    + ", ".join(f"{s['id']} ({s['hook']})" for s in services["services"])
                )
                by_id = {r["id"]: r for r in resources if r["resourceType"] == "Patient"}
                first_card = None
                for patient in patients:
                    order = next(
                        r
                        for r in resources
                        if r["resourceType"] == "ServiceRequest"
                        and r["subject"]["reference"] == f"Patient/{patient}"
                    )
                    response = ehr.post(
                        f"{base}{SERVICE}",
                        headers=signed(SERVICE),
                        # Partial prefetch, as many EHRs send: the service reads the rest itself.
                        json=order_select_request(
                            order=order,
                            patient_id=patient,
                            fhir_server=fhir,
                            prefetch={"patient": by_id[patient]},
                        ),
                    )
                    response.raise_for_status()
                    for card in response.json()["cards"]:
                        console.print(card_renderable(patient, card))
                        first_card = first_card or card
                if first_card is not None:
                    feedback = {
                        "feedback": [
                            {
                                "card": first_card["uuid"],
                                "outcome": "overridden",
                                "outcomeTimestamp": time.strftime(
                                    "%Y-%m-%dT%H:%M:%SZ", time.gmtime()
                                ),
                                "overrideReason": {"reason": first_card["overrideReasons"][-1]},
                            }
                        ]
                    }
                    path = f"{SERVICE}/feedback"
                    result = ehr.post(f"{base}{path}", headers=signed(path), json=feedback)
                    console.print(
                        f"feedback on the first card: HTTP {result.status_code} {result.text}"
                    )
                if keep:
                    wait_for_ctrl_c(
                        console,
                        {
                            "FHIR base": fhir,
                            "CDS service discovery": f"{base}/cds-services",
                            **_app_urls(smart, base, patients[0]),
                            "try": f"cto-cds score --fhir {fhir} --patient {patients[0]}",
                        },
                    )
                else:
                    console.print(
                        "SMART app: ./scripts/demo in a terminal (or --keep) prints a URL to open it"
                    )
    return 0


def _smart_ehr(
    console: Console, stack: ExitStack, workdir: Path, fhir: str, app: str
) -> SmartEhr | None:
    """The local SMART EHR, or None with one line saying why (the demo goes on without it)."""
    console.print("starting the local SMART authorization server (oidc-provider) …")
    try:
        return stack.enter_context(running_smart_ehr(workdir, fhir, app))
    except (SmartUnavailableError, OSError, subprocess.CalledProcessError) as exc:
        console.print(f"SMART app: no launch URL: {exc}", markup=False, highlight=False)
        return None


def _app_urls(smart: SmartEhr | None, app: str, patient: str) -> dict[str, str]:
    if smart is None:
        return {"SMART app launch": f"{app}/app/launch (needs an EHR; none is running)"}
    return {
        "SMART EHR (FHIR facade over the server above)": smart.fhir,
        "SMART authorization server": smart.auth_server,
        f"SMART app, EHR launch of {patient}: open in a browser": smart.launch_url(
            app, patient, f"ServiceRequest/{patient}-order"
        ),
        "SMART app, standalone launch": smart.standalone_url(app),
    }
