"""The `cto-cds` command line: an edge, so it reads files and prints; the scoring stays pure.

Bad input never produces a traceback: one line on stderr naming the problem, exit code 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.table import Table

from cds import __version__
from cds.errors import CdsError
from cds.output.console import make_console, print_report
from cds.scoring.engine import score_all
from cds.scoring.inputs import INPUTS, parse_inputs

EXIT_BAD_INPUT = 2

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
    print(f"cto-cds: error: {source}: {message}", file=sys.stderr)
    raise typer.Exit(EXIT_BAD_INPUT)


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
        str,
        typer.Argument(
            metavar="FILE.json",
            help="A JSON object of canonical inputs (see `cto-cds inputs`); '-' reads stdin.",
        ),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the JSON contract instead of tables.")
    ] = False,
) -> None:
    """Score a case: every score's points or range, band, published estimate and missing inputs.

    A missing key or null is unknown; unknown inputs give a range and the bands it can reach.
    """
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
def inputs() -> None:
    """List the canonical inputs a score file may contain, with their types and meaning."""
    table = Table(title="canonical inputs (missing or null = unknown)", title_justify="left")
    table.add_column("input", style="bold")
    table.add_column("value")
    table.add_column("meaning")
    for spec in INPUTS:
        table.add_row(spec.name, spec.describe(), spec.meaning)
    make_console().print(table)


def main() -> None:
    app()
