"""The result fragments of the review page: the Operator-CTO result first (points or range, band,
estimate with n and 95 % CI, the expert-operator what-if, the band chart) and the comparators, each
labelled with the outcome it predicts. Rendered the same for the first view and the live recompute.
"""

from __future__ import annotations

from html import escape
from typing import Any

from cds.app.chart import band_chart
from cds.scoring.result import ScoreReport, ScoreResult
from cds.scoring.scores.operator_cto import OPERATOR_CTO


def number_text(x: float) -> str:
    return f"{x:g}"


def _points(score: ScoreResult | Any) -> str:
    if score.points is not None:
        return number_text(score.points)
    return f"{number_text(score.min)} to {number_text(score.max)}"


def _band(score: ScoreResult | Any) -> str:
    if score.band:
        return str(score.band).replace("_", " ")
    return " or ".join(b.replace("_", " ") for b in score.bands) or "—"


def result_html(report: ScoreReport) -> str:
    """Operator-CTO first: points or range, band, estimate with n and CI, the expert operator."""
    score = report.scores[OPERATOR_CTO.id]
    rows = [
        f'<p class="headline"><span class="points">{escape(_points(score))} points</span> · '
        f'<span class="band" data-band="{escape(score.band or "")}">{escape(_band(score))}</span></p>'
    ]
    est = score.estimate
    if est is not None:
        text = f"{est.proportion * 100:.0f} % {escape(score.outcome_label)}"
        if est.n is not None:
            text += f" (n = {est.n}"
            if est.ci95 is not None:
                text += f", 95 % CI {est.ci95[0] * 100:.0f}–{est.ci95[1] * 100:.0f} %"
            text += ")"
        rows.append(f'<p class="estimate">{text}</p>')
    else:
        rows.append('<p class="estimate">No single estimate: complete the unknown inputs.</p>')
    for scenario in OPERATOR_CTO.scenarios:
        alt = score.scenarios.get(scenario.id)
        if alt is not None:
            rows.append(
                f'<p class="scenario">With {escape(scenario.label)}: '
                f"{escape(_points(alt))} points, {escape(_band(alt))}</p>"
            )
    if score.missing:
        names = ", ".join(escape(m) for m in score.missing)
        rows.append(f'<p class="missing">Unknown: {names}</p>')
    rows.append(band_chart(OPERATOR_CTO, score.band))
    rows.append(f'<p class="cite">{escape(score.citation)}</p>')
    return "".join(rows)


def comparators_html(report: ScoreReport) -> str:
    items = []
    for score_id, score in report.scores.items():
        if score_id == OPERATOR_CTO.id:
            continue
        items.append(
            f"<li><strong>{escape(score.name)}</strong> ({escape(score.outcome_label)}): "
            f"{escape(_points(score))} points, {escape(_band(score))}</li>"
        )
    return '<ul class="comparators">' + "".join(items) + "</ul>"
