"""The readable `cto-cds score` output: one table of scores, then the Operator-CTO explanation."""

from __future__ import annotations

import json

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from cds.output.wording import (
    CAVEAT,
    EXPERT_OPERATOR,
    bands_text,
    estimate_text,
    outcome_text,
    points_text,
    range_text,
)
from cds.scored_case import ScoredCase
from cds.scoring.result import ScoreReport, ScoreResult

_PRESENT = {True: Text("yes", style="bold"), False: Text("no"), None: Text("undecided", "yellow")}


def _summary_table(report: ScoreReport) -> Table:
    table = Table(title="CTO-PCI scores", title_justify="left")
    table.add_column("score", style="bold", no_wrap=True)
    table.add_column("predicts")
    table.add_column("points", justify="right")
    table.add_column("band")
    table.add_column("published estimate", min_width=30)
    table.add_column("missing inputs", style="yellow", min_width=31)
    for result in report.scores.values():
        table.add_row(
            result.name,
            outcome_text(result),
            points_text(result.points, result.min, result.max),
            bands_text(result) or "—",
            estimate_text(result.estimate) if result.estimate else "—",
            ", ".join(result.missing) or "—",
        )
    return table


def _items_table(result: ScoreResult) -> Table:
    table = Table(title=f"{result.name} items", title_justify="left")
    table.add_column("item")
    table.add_column("points", justify="right")
    table.add_column("present")
    table.add_column("input value")
    for item in result.items:
        value = "unknown" if item.value is None else json.dumps(item.value)
        table.add_row(item.label, f"{item.points:+g}", _PRESENT[item.present], value)
    return table


def render_report(report: ScoreReport) -> Group:
    """Everything `cto-cds score` prints for a person (the `--json` output is the contract)."""
    parts: list[Table | Text] = [_summary_table(report)]
    primary = report.scores.get("operator_cto")
    if primary is not None:
        parts.append(_items_table(primary))
        lines = []
        for group, label in (("lesion", "lesion points"), ("operator", "operator adjustment")):
            sub = primary.groups.get(group)
            if sub is not None:
                lines.append(f"{label}: {points_text(sub.points, sub.min, sub.max)}")
        expert = primary.scenarios.get("expert_operator")
        if expert is not None:
            lines.append(f"with {EXPERT_OPERATOR}: {range_text(expert)}")
        lines.append(CAVEAT)
        lines.append(f"{primary.citation}. {primary.url or ''}".strip())
        parts.append(Text("\n".join(lines)))
    return Group(*parts)


def make_console() -> Console:
    console = Console()
    # Piped or in CI rich assumes 80 columns, which would fold every cell: be wider.
    return console if console.is_terminal else Console(width=140)


def print_report(report: ScoreReport, console: Console | None = None) -> None:
    (console or make_console()).print(render_report(report))


def _inputs_table(case: ScoredCase) -> Table:
    table = Table(title="inputs and where they came from", title_justify="left")
    table.add_column("input", style="bold", no_wrap=True)
    table.add_column("value")
    table.add_column("evidence")
    table.add_column("source")
    table.add_column("note", overflow="fold")
    for name, mapped in case.mapping.inputs.items():
        value = "unknown" if mapped.value is None else json.dumps(mapped.value)
        source = ", ".join(mapped.sources[:3]) + (" …" if len(mapped.sources) > 3 else "")
        table.add_row(name, value, mapped.evidence, source or mapped.rule, mapped.note or "")
    return table


def print_case(case: ScoredCase, console: Console | None = None) -> None:
    """Inputs with provenance, then the scores, for a record read from FHIR data."""
    console = console or make_console()
    mapping = case.mapping
    console.print(
        f"order {mapping.order or '(none)'}, operator {mapping.operator or '(unknown)'}, "
        f"index date {mapping.index_date.isoformat()}"
    )
    console.print(_inputs_table(case))
    for note in [*mapping.notes, *mapping.diagnostics]:
        console.print(Text(f"note: {note}", style="dim"))
    print_report(case.report, console)
