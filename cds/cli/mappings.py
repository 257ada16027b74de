"""`cto-cds mappings`: check a site's mapping directory and export the tables as FHIR R4 resources.

An edge like `cds.cli`: it reads and writes files and prints; a bad table never produces a traceback
but one line on stderr (`cto-cds: error: file:line: reason`) and exit code 2.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated

import typer

from cds.cli.errors import fail
from cds.errors import ConfigError
from cds.mapping.tables import DEFAULT_DIR, MappingTables, load_tables

CODESYSTEM_FILE = "cto-lesion.codesystem.json"

mappings_app = typer.Typer(
    name="mappings",
    help="Check or export the code mapping tables (defaults in mappings/, plus a site directory).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _load(site: Path | None) -> MappingTables:
    try:
        return load_tables(site)
    except ConfigError as exc:
        fail(str(exc))


@mappings_app.command()
def check(
    site: Annotated[
        Path | None,
        typer.Argument(
            metavar="[DIR]",
            help="Site directory with codes.csv, operators.csv and/or rules.yaml (each optional); "
            "without it the shipped defaults alone are checked.",
        ),
    ] = None,
) -> None:
    """Load the defaults (and DIR over them); print a summary and the tables' version (what a
    service started on the same files reports: `/readyz`, the audit rows), or the first error
    with its line."""
    tables = _load(site)
    enabled = sum(1 for row in tables.rows if row.enabled)
    print(
        f"{len(tables.rows)} rows ({enabled} enabled), {len(tables.operators)} operators, rules OK"
    )
    print(f"version {tables.version}")


@mappings_app.command()
def export(
    out: Annotated[
        Path,
        typer.Option("--out", metavar="DIR", help="Directory to write into (created if missing)."),
    ],
    site: Annotated[
        Path | None,
        typer.Option("--site", metavar="DIR", help="Site mapping directory merged over defaults."),
    ] = None,
) -> None:
    """Write ValueSet-*.json (one per concept), ConceptMap-*.json, the local CodeSystem and the
    CodeSystems of the score codes write-back uses (method, item, band).

    Files of the same name in DIR are replaced; other files are left alone.
    """
    from cds.mapping.export import concept_map, validate, value_sets
    from cds.writeback.codesystems import score_codesystems

    tables = _load(site)
    sets = value_sets(tables)
    resources = [*sets, concept_map(tables), *score_codesystems()]
    try:
        for resource in resources:
            validate(resource)  # a site row must not produce invalid FHIR
    except ConfigError as exc:  # fhir.resources missing: the message says which extra to install
        fail(str(exc))
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        fail(f"export of {resource['resourceType']}/{resource['id']} is not valid FHIR: {exc}")
    try:
        out.mkdir(parents=True, exist_ok=True)
        for resource in resources:
            path = out / f"{resource['resourceType']}-{resource['id']}.json"
            path.write_text(json.dumps(resource, ensure_ascii=False, indent=2) + "\n", "utf-8")
        shutil.copyfile(DEFAULT_DIR / CODESYSTEM_FILE, out / "CodeSystem-cto-lesion.json")
    except OSError as exc:
        fail(f"{out}: cannot write: {exc.strerror or exc}")
    print(
        f"wrote {len(sets)} ValueSets, 1 ConceptMap and the cto-lesion, cto-score-method, "
        f"cto-score-item and cto-score-band CodeSystems to {out}"
    )
