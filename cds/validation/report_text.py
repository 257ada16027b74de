"""The validation result as terminal tables (rich): a summary per score, then bands and exclusions."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from cds.validation.analysis import PRIMARY, BandResult, ScoreValidation, ValidationResult


def fmt_p(value: float | None) -> str:
    if value is None:
        return "–"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def fmt_ci(ci: tuple[float, float] | None, digits: int = 3) -> str:
    return "–" if ci is None else f"{ci[0]:.{digits}f}–{ci[1]:.{digits}f}"


def fmt_pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def _summary(result: ValidationResult) -> Table:
    table = Table(title="discrimination and calibration (technical success)", title_justify="left")
    for name in ("score", "n", "successes", "excluded", "AUC (95 % CI)", "vs Operator-CTO (p)"):
        table.add_column(name, justify="left" if name == "score" else "right")
    table.add_column("Hosmer–Lemeshow χ² (df, p)", justify="right")
    for s in result.scores.values():
        auc = "–" if s.auc is None else f"{s.auc:.3f} ({fmt_ci(s.auc_ci95)})"
        vs = "" if s.id == PRIMARY else "–"
        if s.vs_operator_cto is not None:
            v = s.vs_operator_cto
            vs = f"{v.diff:+.3f} ({fmt_ci(v.ci95)}, p {fmt_p(v.p)})"
        hl = "–" if s.hl_chi2 is None else f"{s.hl_chi2:.3f} ({s.hl_df}, {fmt_p(s.hl_p)})"
        table.add_row(s.name, str(s.n), str(s.events), str(s.excluded.count), auc, vs, hl)
    return table


def _band_rows(table: Table, bands: dict[str, BandResult]) -> None:
    for band, b in bands.items():
        published = "–"
        if b.published is not None:
            pub = b.published
            rate = pub.as_success if pub.as_success is not None else pub.proportion
            what = "" if pub.as_success is not None else f" ({pub.outcome})"
            count = "" if pub.n is None else f" = {pub.successes}/{pub.n}"
            published = f"{fmt_pct(rate)}{count}{what}"
        table.add_row(
            band,
            f"{b.successes}/{b.n}",
            f"{fmt_pct(b.successes / b.n)} ({fmt_pct(b.ci95[0])}–{fmt_pct(b.ci95[1])})",
            fmt_pct(b.predicted),
            published,
        )


def _calibration(s: ScoreValidation) -> Table:
    table = Table(title=f"{s.name}: success by {s.grouping.rstrip('s')}", title_justify="left")
    table.add_column(s.grouping.rstrip("s"))
    table.add_column("site", justify="right")
    table.add_column("observed (Wilson 95 % CI)", justify="right")
    table.add_column("site model", justify="right")
    table.add_column("published", justify="right")
    _band_rows(table, s.bands)
    return table


def print_validation(result: ValidationResult, console: Console) -> None:
    console.print(
        f"[bold]{result.source}[/]: {result.lesions} lesions analysed, "
        f"{result.rows_rejected} rows rejected"
    )
    if result.mappings is not None:
        console.print(f"inputs read through the mapping tables version {result.mappings}")
    for error in result.errors[:20]:
        console.print(f"  [red]rejected[/] {error}", highlight=False)
    if len(result.errors) > 20:
        console.print(f"  … and {len(result.errors) - 20} more (see --json)")
    if result.absent_inputs:
        console.print(
            "no column (unknown in every row): " + ", ".join(result.absent_inputs), highlight=False
        )
    console.print(_summary(result))
    for s in result.scores.values():
        if s.n == 0:
            continue
        console.print(_calibration(s))
        if s.hl_chi2 is not None:
            console.print(
                f"  Hosmer–Lemeshow grouping: {s.hl_grouping.replace('_', ' ')} "
                f"({len(s.hl_groups)} groups)",
                highlight=False,
            )
    excluded = [s for s in result.scores.values() if s.excluded.count]
    if excluded:
        table = Table(title="excluded per score (an unknown input leaves the total open)")
        table.add_column("score")
        table.add_column("excluded", justify="right")
        table.add_column("most frequent unknown inputs (lesions)")
        for s in excluded:
            top = ", ".join(f"{k} ({v})" for k, v in list(s.excluded.reasons.items())[:4])
            table.add_row(s.name, str(s.excluded.count), top)
        console.print(table)
    primary = result.scores.get(PRIMARY)
    if primary is not None and primary.experience is not None and primary.experience.n:
        e = primary.experience
        line = (
            f"Operator-CTO, lesion points alone: AUC {_auc(e.lesion_points.auc)}; "
            f"with operator experience: {_auc(e.total.auc)} (n {e.n})"
        )
        if e.total_vs_lesion is not None:
            v = e.total_vs_lesion
            line += f"; difference {v.diff:+.3f} ({fmt_ci(v.ci95)}, p {fmt_p(v.p)})"
        console.print(line, highlight=False)


def _auc(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"
