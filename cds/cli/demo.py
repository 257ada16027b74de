"""`cto-cds demo` (the whole product locally) and `cto-cds demo load` (the cohort into any FHIR server).

`demo` alone runs `cds.demo.run` as before; `demo load --fhir BASE` is what the compose file's
one-shot job runs against HAPI: wait for the server, load what is missing, say what it did.
"""

from __future__ import annotations

import signal
import sys
from typing import Annotated

import httpx
import typer

from cds.cli.errors import fail
from cds.output.console import make_console

demo_app = typer.Typer(
    invoke_without_command=True,
    add_completion=False,
)

DEFAULT_TIMEOUT = 60.0
"""Seconds `demo load` waits for `/metadata`: HAPI takes a minute or more to start
(docs/spec/test-servers.md §1.3)."""


@demo_app.callback()
def demo(
    ctx: typer.Context,
    patient: Annotated[
        list[str] | None,
        typer.Option(
            "--patient", metavar="ID", help="Cohort patient to show, pt01 … pt32 (repeatable)."
        ),
    ] = None,
    keep: Annotated[
        bool,
        typer.Option(
            "--keep",
            metavar=" ",  # a flag: typer would print `<bool>`
            help="Leave the FHIR server and the service running (URLs printed) until Ctrl-C.",
        ),
    ] = False,
) -> None:
    """The whole product locally: a FHIR server with the synthetic cohort, the CDS service, and an
    EHR-like client sending signed order-select hooks; prints each whole card.

    `cto-cds demo load --fhir BASE` only loads the cohort into a FHIR server you run."""
    if ctx.invoked_subcommand is not None:
        return
    from cds.demo.fhir_server import FhirServerError
    from cds.demo.run import DEFAULT_PATIENTS, UnknownPatientError, run_demo

    # A plain `kill` (SIGTERM) unwinds like Ctrl-C: every context manager stops its server, so no
    # sekmet or node process outlives the demo. Ctrl-C is (re)installed too: a process started in
    # the background by a script inherits SIGINT *ignored* and Python then leaves it ignored, so
    # `--keep` would never stop on the Ctrl-C it invites (a suite run under `nohup … &` hung so).
    previous = signal.signal(signal.SIGTERM, _interrupt)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        raise typer.Exit(run_demo(patient or DEFAULT_PATIENTS, make_console(), keep=keep))
    except KeyboardInterrupt:
        print("cto-cds demo: interrupted; servers stopped", file=sys.stderr)
        raise typer.Exit(130) from None
    except UnknownPatientError as exc:
        fail(str(exc))
    except FhirServerError as exc:
        print(f"cto-cds: error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@demo_app.command("load")
def load(
    fhir: Annotated[
        str, typer.Option("--fhir", metavar="BASE_URL", help="The FHIR R4 server's base URL.")
    ],
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            metavar="SECONDS",
            min=0,
            help="How long to wait for the server's /metadata before giving up.",
        ),
    ] = DEFAULT_TIMEOUT,
) -> None:
    """Load the shipped synthetic cohort into a FHIR R4 server (HAPI, sekmet, …).

    Waits for BASE_URL/metadata, then writes only what the server lacks or holds differently
    (transaction Bundles of PUTs by id, single PUTs where transactions are refused): a second run
    writes nothing."""
    from cds.demo.cohort_data import load_ndjson
    from cds.demo.cohort_load import load_missing, wait_for_metadata
    from cds.demo.fhir_server import FhirServerError
    from cds.errors import ConfigError
    from cds.outbound_tls import check_outbound_tls
    from cds.urls import UrlError, base_url, masked

    try:
        base = base_url(fhir)
    except UrlError as exc:
        fail(f"--fhir {masked(fhir)!r} {exc}")  # a refused URL may carry a password
    resources = load_ndjson()
    try:
        check_outbound_tls()  # httpx reads SSL_CERT_FILE when the client is made
        with httpx.Client(timeout=60.0) as client:
            wait_for_metadata(base, client, timeout)
            result = load_missing(base, resources, client)
    except (FhirServerError, ConfigError) as exc:
        fail(str(exc))
    except httpx.HTTPError as exc:  # the server went away or stalled after /metadata answered
        fail(f"{type(exc).__name__} {exc}".strip(), base)
    print(
        f"{base}: cohort of {len(resources)} resources: {result.written} written, "
        f"{result.unchanged} already there"
    )
