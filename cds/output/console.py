"""The readable `cto-cds score` output: one table of scores, then the Operator-CTO explanation.

No clinical value is ever cut: every column folds (wraps, and splits a word only when it is longer
than the column) instead of rich's default ellipsis, at 80 columns, narrower, or piped. Percentages
use the card's one rounding rule (`wording.percent`).
"""

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
    input_words,
    item_points,
    outcome_text,
    points_text,
    range_text,
    result_points_text,
)
from cds.scored_case import ScoredCase
from cds.scoring.result import ScoreReport, ScoreResult

STACK_BELOW = 100
"""Narrower consoles get each row as a stack of `column: value` lines instead of a table."""

Cell = str | Text


def _grid(title: str, columns: tuple[str, ...], rows: list[list[Cell]], width: int) -> Table | Text:
    """A table that folds (never cuts) its cells, or on a narrow console the rows stacked."""
    if width >= STACK_BELOW:
        table = Table(title=title, title_justify="left")
        for name in columns:
            table.add_column(name, overflow="fold")
        for row in rows:
            table.add_row(*row)
        return table
    out = Text(title + "\n", style="italic")
    for row in rows:
        out.append_text(Text.assemble(row[0], "\n", style="bold"))
        for name, cell in zip(columns[1:], row[1:], strict=True):
            out.append_text(Text.assemble(f"  {name}: ", cell, "\n"))
    return out


_SUMMARY_COLUMNS = ("score", "predicts", "points", "band", "estimate", "missing inputs")


def _summary_rows(report: ScoreReport) -> list[list[Cell]]:
    return [
        [
            Text(result.name, style="bold"),
            outcome_text(result),
            result_points_text(result),
            bands_text(result) or "—",
            estimate_text(result.estimate) if result.estimate else "—",
            Text(", ".join(map(input_words, result.missing)) or "—", style="yellow"),
        ]
        for result in report.scores.values()
    ]


def _item_rows(result: ScoreResult) -> list[list[Cell]]:
    rows: list[list[Cell]] = []
    for item in result.items:
        value = Text("unknown", "yellow") if item.value is None else json.dumps(item.value)
        rows.append([item.label, value, item_points(item)])
    return rows


def render_report(report: ScoreReport, width: int = STACK_BELOW) -> Group:
    """Everything `cto-cds score` prints for a person (the `--json` output is the contract)."""
    parts: list[Table | Text] = [
        _grid("CTO-PCI scores", _SUMMARY_COLUMNS, _summary_rows(report), width)
    ]
    primary = report.scores.get("operator_cto")
    if primary is not None:
        columns = ("item", "value", "points")
        parts.append(_grid(f"{primary.name} items", columns, _item_rows(primary), width))
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
    # Piped or in CI rich assumes 80 columns: be wider, so fewer cells fold (none is ever cut).
    return console if console.is_terminal else Console(width=140)


def print_report(report: ScoreReport, console: Console | None = None) -> None:
    console = console or make_console()
    console.print(render_report(report, console.width))


def _input_rows(case: ScoredCase) -> list[list[Cell]]:
    rows: list[list[Cell]] = []
    for name, mapped in case.mapping.inputs.items():
        value = "unknown" if mapped.value is None else json.dumps(mapped.value)
        source = ", ".join(mapped.sources[:3])
        if len(mapped.sources) > 3:
            source += f" and {len(mapped.sources) - 3} more"
        rows.append([name, value, mapped.evidence, source or mapped.rule, mapped.note or ""])
    return rows


def print_case(case: ScoredCase, console: Console | None = None) -> None:
    """Inputs with provenance, then the scores, for a record read from FHIR data."""
    console = console or make_console()
    mapping = case.mapping
    labels = mapping.labels
    operator = mapping.operator or "(unknown)"
    if labels.operator_name:
        operator = f"{labels.operator_name} ({operator})"
    target = mapping.inputs.get("target_vessel")
    vessel = target.value if target is not None and target.value is not None else "unknown"
    site = f" ({labels.target_site})" if labels.target_site else ""
    console.print(
        Text(
            f"target {vessel} CTO{site}; order {mapping.order or '(none)'}; operator {operator}; "
            f"index date {mapping.index_date.isoformat()}"
        )
    )
    columns = ("input", "value", "evidence", "source", "note")
    console.print(
        _grid("inputs and where they came from", columns, _input_rows(case), console.width)
    )
    for note in [*mapping.notes, *mapping.diagnostics]:
        console.print(Text(f"note: {note}", style="dim"))
    print_report(case.report, console)
