"""The `cto-cds` command line: an edge, so it reads files and prints; the scoring stays pure.

Bad input never produces a traceback: one line on stderr naming the problem, exit code 2.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.table import Table

from cds import __version__
from cds.cli.db import db_app
from cds.cli.demo import demo_app
from cds.cli.errors import fail
from cds.cli.feedback import feedback_app
from cds.cli.mappings import mappings_app
from cds.cli.validate import validate
from cds.errors import CdsError, InputError, integer_too_long
from cds.output.console import make_console, print_report
from cds.scoring.engine import score_all
from cds.scoring.inputs import INPUTS, parse_inputs

app = typer.Typer(
    name="cto-cds",
    help="Operator-CTO and comparator CTO-PCI scores: command line of the CDS Hooks service.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class _DuplicateKeyError(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # A repeated key would silently drop one of two clinical values: refuse it instead.
    seen: dict[str, object] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKeyError(f"duplicate key {json.dumps(key)}")
        seen[key] = value
    return seen


def _fail(source: str, message: str) -> NoReturn:
    fail(message, source)


def _read_json(path: str) -> object:
    source = "stdin" if path == "-" else path
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except FileNotFoundError:
        _fail(source, "no such file")
    except IsADirectoryError:
        _fail(source, "is a directory, not a JSON file")
    except OSError as exc:
        _fail(source, f"cannot read: {exc.strerror}")
    try:
        return json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError as exc:
        _fail(source, f"not UTF-8 text (byte {exc.start})")
    except _DuplicateKeyError as exc:
        _fail(source, str(exc))
    except json.JSONDecodeError as exc:
        _fail(source, f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}")
    except RecursionError:
        _fail(source, "JSON nested too deeply")
    except ValueError:  # not a JSONDecodeError: an integer past Python's digit limit
        _fail(source, f"not valid JSON: {integer_too_long()}")


def _version(value: bool) -> None:
    if value:
        print(f"cto-cds {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Operator-CTO and comparator CTO-PCI scores."""


@app.command()
def score(
    file: Annotated[
        str | None,
        typer.Argument(
            metavar="[FILE.json]",
            help="A JSON object of canonical inputs (see `cto-cds inputs`); '-' reads stdin.",
        ),
    ] = None,
    bundle: Annotated[
        Path | None,
        typer.Option("--bundle", help="Read the record from a FHIR Bundle (JSON) or NDJSON file."),
    ] = None,
    fhir: Annotated[
        str | None,
        typer.Option("--fhir", metavar="BASE_URL", help="Read the record from a FHIR server."),
    ] = None,
    patient: Annotated[
        str | None,
        typer.Option(
            "--patient", metavar="ID", help="Patient id (--fhir; --bundle when it holds several)."
        ),
    ] = None,
    order: Annotated[
        str | None,
        typer.Option(
            "--order",
            metavar="ServiceRequest/ID",
            help="The CTO-PCI order (default: the patient's most recent open CTO-PCI order).",
        ),
    ] = None,
    mappings: Annotated[
        Path | None,
        typer.Option(
            "--mappings", metavar="DIR", help="Site mapping overrides merged over mappings/."
        ),
    ] = None,
    token_env: Annotated[
        str | None,
        typer.Option(
            "--token-env",
            metavar="VAR",
            help="Environment variable holding a bearer token for --fhir (never pass tokens as arguments).",
        ),
    ] = None,
    today: Annotated[
        str | None,
        typer.Option(
            "--today",
            metavar="YYYY-MM-DD",
            help="Date used when the order has none (default: today).",
        ),
    ] = None,
    as_json: Annotated[
        bool,
        # metavar " ": typer would print `<bool>` and make a flag look like it takes a value.
        typer.Option("--json", metavar=" ", help="Print the JSON contract instead of tables."),
    ] = False,
    ndjson: Annotated[
        Path | None,
        typer.Option(
            "--ndjson",
            metavar="DIR",
            help="Batch: score every CTO-PCI order of a Bulk FHIR export.",
        ),
    ] = None,
    csv: Annotated[
        Path | None,
        typer.Option(
            "--csv", metavar="FILE", help="Batch: score every row of a CSV of canonical inputs."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", metavar="FILE.ndjson", help="Batch: one result line per order or row."
        ),
    ] = None,
    jobs: Annotated[
        int, typer.Option("--jobs", metavar="N", help="Batch: worker processes (0 = all cores).")
    ] = 1,
) -> None:
    """Score a case: every score's points or range, band, published estimate and missing inputs.

    From an inputs file (FILE.json), a FHIR Bundle/NDJSON (--bundle) or a FHIR server (--fhir with
    --patient). A missing key or null is unknown; unknown inputs give a range and the bands it can
    reach. From FHIR data the output also says where each input came from.
    """
    if ndjson is not None or csv is not None or out is not None:
        from cds.cli.batch import batch_score

        batch_score(file, bundle, fhir, ndjson, csv, out, jobs, mappings, today)
        return
    chosen = [
        name for name, given in (("FILE", file), ("--bundle", bundle), ("--fhir", fhir)) if given
    ]
    if len(chosen) != 1:
        _fail(
            "score",
            "give exactly one of FILE, --bundle, --fhir, --ndjson or --csv"
            + (f" (got {', '.join(chosen)})" if chosen else ""),
        )
    if file is not None:
        _score_inputs_file(file, as_json)
        return
    from cds.cli.record import RecordOptions, score_from_record

    try:
        score_from_record(
            RecordOptions(
                bundle=bundle,
                fhir=fhir,
                patient=patient,
                order=order,
                mappings=mappings,
                token_env=token_env,
                today=today,
            ),
            as_json,
        )
    except CdsError as exc:
        from cds.urls import masked

        # A --fhir URL may carry a password or a token: never repeated whole.
        _fail(str(bundle) if bundle else masked(str(fhir)), str(exc))


def _score_inputs_file(file: str, as_json: bool) -> None:
    raw = _read_json(file)
    try:
        inputs = parse_inputs(raw)
    except CdsError as exc:
        _fail("stdin" if file == "-" else file, str(exc))
    report = score_all(inputs)
    if as_json:
        print(json.dumps(report.model_dump(mode="json"), ensure_ascii=False, indent=2))
    else:
        print_report(report)


@app.command()
def save(
    fhir: Annotated[str, typer.Option("--fhir", metavar="BASE_URL", help="The FHIR server.")],
    patient: Annotated[str, typer.Option("--patient", metavar="ID", help="Patient id.")],
    inputs_file: Annotated[
        str,
        typer.Option("--inputs", metavar="FILE.json", help="Lesion findings as canonical inputs."),
    ],
    order: Annotated[
        str | None,
        typer.Option(
            "--order", metavar="ServiceRequest/ID", help="Default: the open CTO-PCI order."
        ),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option("--user", metavar="Practitioner/ID", help="Who entered the findings."),
    ] = None,
    token_env: Annotated[
        str | None,
        typer.Option("--token-env", metavar="VAR", help="Variable holding a bearer token."),
    ] = None,
    mappings: Annotated[
        Path | None, typer.Option("--mappings", metavar="DIR", help="Site mapping overrides.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print created/updated/unchanged.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the transaction Bundle, send nothing.")
    ] = False,
) -> None:
    """Save entered lesion findings and the scores to the FHIR server (idempotent: again = no-op)."""
    from cds.cli.save import SaveOptions, save_command
    from cds.urls import masked

    raw = _read_json(inputs_file)
    options = SaveOptions(fhir, patient, order, raw, user, token_env, mappings, dry_run)
    try:
        save_command(options, as_json)
    except CdsError as exc:
        _fail(inputs_file if isinstance(exc, InputError) else masked(fhir), str(exc))


@app.command()
def inputs() -> None:
    """List the canonical inputs a score file may contain, with their types and meaning."""
    table = Table(title="canonical inputs (missing or null = unknown)", title_justify="left")
    table.add_column("input", style="bold")
    table.add_column("value")
    table.add_column("meaning")
    for spec in INPUTS:
        table.add_row(spec.name, spec.describe(), spec.meaning)
    make_console().print(table)


app.add_typer(mappings_app, name="mappings")
app.command()(validate)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Worker processes, one event loop each (sizing: deploy/README.md).",
        ),
    ] = 1,
) -> None:
    """Run the CDS Hooks service (configuration: CTO_CDS_* variables, see the README).

    Logs are JSON lines on stderr, free of patient data (cds/logs.py, docs/operations.md)."""
    import logging.config

    import uvicorn

    from cds.auth.trust import load_trusted_clients
    from cds.cli.db import require_schema
    from cds.logs import log_config
    from cds.main import create_app, served_settings
    from cds.metrics import check_multiprocess_dir
    from cds.outbound_tls import check_outbound_tls
    from cds.settings import load_settings
    from cds.store.engine import prepare

    logging.config.dictConfig(log_config())  # before anything logs: start-up warnings too
    logging.captureWarnings(True)  # Python warnings as JSON lines too, not bare stderr text
    try:
        settings = load_settings()
        check_outbound_tls()  # httpx reads SSL_CERT_FILE inside the start-up: a traceback there
        check_multiprocess_dir()
        path = settings.trusted_clients
        trusted = load_trusted_clients(path) if path else []
        # Reach and migrate the database now: a bad one is one line and exit 2, not a traceback
        # from inside the server's start-up (and never a 500 at the first request).
        # With CTO_CDS_MIGRATE_ON_START=false a job migrates (`cto-cds db upgrade`): only check.
        check = prepare if settings.migrate_on_start else require_schema
        asyncio.run(check(settings.database_url))
        # Migrated (or checked) once, here: the app, or each worker's, only checks the schema.
        application = create_app(served_settings(settings), trusted, freeze_gc=True)
    except CdsError as exc:
        fail(str(exc))
    if not trusted:
        # Every hook call would be refused (401): say so now, not at the first EHR call.
        print(
            f"cto-cds: warning: the trust list is empty ({path or 'CTO_CDS_TRUSTED_CLIENTS unset'})"
            ": every hook call will be refused",
            file=sys.stderr,
            flush=True,
        )
    # No access log: query strings carry `iss` and `launch`; the metrics count requests instead.
    if workers == 1:
        uvicorn.run(application, host=host, port=port, log_config=log_config(), access_log=False)
        return
    # Several processes need an importable factory: each worker builds its own app from the same
    # CTO_CDS_* environment (sizing: deploy/README.md).
    with shared_metrics():
        uvicorn.run(
            "cds.main:served_app",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            log_config=log_config(),
            access_log=False,
        )


@contextmanager
def shared_metrics() -> Iterator[None]:
    """Workers that count into one directory, so that a scrape of `/metrics`, whichever worker
    answers it, adds up all of them (cds/metrics.py): a new empty one for this run, removed after
    it, unless the operator chose one (`PROMETHEUS_MULTIPROC_DIR`: then theirs, untouched). Set
    before the workers start: prometheus-client reads it when a worker first imports it."""
    from cds.metrics import MULTIPROC_ENV

    if os.environ.get(MULTIPROC_ENV):
        yield
        return
    directory = tempfile.mkdtemp(prefix="cto-cds-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    try:
        yield
    finally:
        del os.environ[MULTIPROC_ENV]
        shutil.rmtree(directory, ignore_errors=True)


app.add_typer(demo_app, name="demo")
app.add_typer(db_app, name="db")
app.add_typer(feedback_app, name="feedback")


def main() -> None:
    app()
