"""`cto-cds validate COHORT`: the paper's analysis on a site's own cases (docs/validation.md).

COHORT is a registry CSV (one row per lesion) or a directory of Bulk FHIR NDJSON whose CTO-PCI
Procedures carry their outcome. Bad rows are reported with line and column and left out; `--strict`
refuses the file instead (exit 2).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cds.cli.errors import fail
from cds.errors import CdsError

if TYPE_CHECKING:
    from cds.validation.analysis import ValidationResult

_MISSING_EXTRA = (
    "validation needs the optional statistics packages: pip install 'cto-cds[validation]'"
)


def validate(
    cohort: Annotated[
        Path,
        typer.Argument(
            metavar="COHORT",
            help="Registry CSV (canonical input columns + technical_success 0/1) or a directory "
            "of Bulk FHIR NDJSON.",
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    report: Annotated[
        Path | None,
        typer.Option("--report", metavar="DIR", help="Write a self-contained HTML report there."),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Refuse the file if any row is bad (exit 2).")
    ] = False,
    mappings: Annotated[
        Path | None,
        typer.Option("--mappings", metavar="DIR", help="Site mapping overrides (NDJSON cohorts)."),
    ] = None,
) -> None:
    """Validate the scores on your own cases: AUC with DeLong CI, pairwise DeLong tests against
    Operator-CTO, Hosmer–Lemeshow, calibration and success per band with Wilson CIs."""
    try:
        from cds.validation.analysis import analyse
        from cds.validation.cohort import Cohort, read_cohort
    except ImportError:
        fail(_MISSING_EXTRA)
    parsed: Cohort
    try:
        if cohort.is_dir():
            from cds.validation.fhir_cohort import read_fhir_cohort

            parsed = read_fhir_cohort(cohort, mappings)
        else:
            try:
                # A byte that is not UTF-8 sets its row aside (iter_rows), not the whole file.
                text = cohort.read_text(encoding="utf-8-sig", errors="surrogateescape")
            except FileNotFoundError:
                fail(f"{cohort}: no such file")
            except OSError as exc:
                fail(f"{cohort}: cannot read: {exc.strerror}")
            parsed = read_cohort(text, str(cohort))
    except CdsError as exc:
        fail(str(exc))
    if strict and parsed.errors:
        fail(f"{parsed.errors[0]} ({len(parsed.errors)} bad cells in all; --strict)")
    if not parsed.lesions:
        fail(f"{cohort}: no usable lesion ({len(parsed.errors)} rows rejected)")
    result = analyse(parsed)
    if report is not None:
        from cds.validation.report_html import write_report

        try:
            written = write_report(result, report)
        except OSError as exc:
            fail(f"{report}: cannot write the report: {exc.strerror}")
    if as_json:
        print(json.dumps(_contract(result), ensure_ascii=False, indent=2))
    else:
        from cds.output.console import make_console
        from cds.validation.report_text import print_validation

        console = make_console()
        print_validation(result, console)
        if report is not None:
            console.print(f"report: {written}", highlight=False)


def _contract(result: ValidationResult) -> dict[str, object]:
    """The `--json` object: the analysis without the per-lesion arrays kept for the plots."""
    data = result.model_dump(mode="json")
    for score in data["scores"].values():
        score.pop("points")
        score.pop("outcomes")
    return data
