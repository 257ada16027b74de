"""`/about/operator-cto`: the page a card's source link opens, for the clinician reading the card.

Generated from the score definition (`cds/scoring/scores/operator_cto.py`) and `wilson_interval`
(`cds/scoring/estimate.py`), so items, points, bands, counts and intervals cannot drift from what the
service computes. Plain HTML and inline CSS: no CDN, no JavaScript, readable inside an EHR frame.
Every value is HTML-escaped, though all of it comes from the package.
"""

from __future__ import annotations

from html import escape

from cds.scoring.estimate import wilson_interval
from cds.scoring.model import Band, ScoreDefinition
from cds.scoring.scores.operator_cto import OPERATOR_CTO

PATH = "/about/operator-cto"

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:46rem;margin:1.5rem auto;padding:0 1rem;"
    "line-height:1.45;color:#1b1b1b}table{border-collapse:collapse;margin:.5rem 0 1rem}"
    "th,td{border:1px solid #bbb;padding:.25rem .6rem;text-align:left}td.n{text-align:right}"
    "caption{text-align:left;font-weight:600}"
)


def _points(value: float) -> str:
    return f"{value:+g}".replace("-", "−")


def _band_range(bands: tuple[Band, ...], index: int, low: float) -> str:
    lower = low if index == 0 else (bands[index - 1].upper or 0) + 1
    upper = bands[index].upper
    if upper is None:
        return f"≥ {lower:g}"
    if index == 0:
        return f"≤ {upper:g}"
    return f"{lower:g}" if lower == upper else f"{lower:g} to {upper:g}"


def _items_table(score: ScoreDefinition, group: str, caption: str) -> str:
    rows = "".join(
        f"<tr><td>{escape(item.label)}</td><td class=n>{_points(item.points)}</td></tr>"
        for item in score.items
        if item.group == group
    )
    return (
        f"<table><caption>{escape(caption)}</caption>"
        f"<tr><th>finding</th><th>points</th></tr>{rows}</table>"
    )


def _bands_table(score: ScoreDefinition) -> str:
    rows = []
    for index, band in enumerate(score.bands):
        estimate = band.estimate
        counts, interval = "not published", ""
        if estimate is not None and estimate.successes is not None and estimate.n is not None:
            low, high = wilson_interval(estimate.successes, estimate.n)
            counts = f"{estimate.successes} / {estimate.n} ({estimate.proportion:.0%})"
            interval = f"{low:.0%} to {high:.0%}"
        rows.append(
            f"<tr><td>{escape(band.label)}</td>"
            f"<td>{escape(_band_range(score.bands, index, score.points_range[0]))}</td>"
            f"<td class=n>{escape(counts)}</td><td>{escape(interval)}</td></tr>"
        )
    return (
        "<table><caption>Bands and technical success in the derivation cohort</caption>"
        "<tr><th>band</th><th>total points</th><th>successes / lesions</th>"
        "<th>95 % CI (Wilson)</th></tr>" + "".join(rows) + "</table>"
    )


def render(score: ScoreDefinition = OPERATOR_CTO) -> str:
    """The whole page as one HTML document."""
    low, high = score.points_range
    notes = "".join(f"<li>{escape(note)}</li>" for note in score.notes)
    source = escape(score.citation)
    if score.url:
        source = f'<a href="{escape(score.url, quote=True)}">{source}</a>'
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(score.name)} score</title><style>{_STYLE}</style></head><body>"
        f"<h1>The {escape(score.name)} score</h1>"
        f"<p>Predicts {escape(score.outcome_label)} from the lesion's angiographic findings, "
        "lowered by the experience of the operator who will perform the procedure. "
        f"Totals run from {_points(low)} to {_points(high)}; a higher total means a harder case.</p>"
        "<h2>Lesion findings</h2>"
        + _items_table(score, "lesion", "Each finding present adds its points")
        + "<h2>Operator adjustment</h2>"
        "<p>The same lesion is easier in experienced hands: each experience criterion the operator "
        "meets subtracts its points. The card also shows the total for an operator meeting all of "
        "them, so the effect of referral can be seen.</p>"
        + _items_table(score, "operator", "Each criterion met subtracts its points")
        + "<h2>What the bands mean</h2>"
        + _bands_table(score)
        + "<p>An input the record does not hold is unknown, never assumed absent: the card then "
        "shows the range of totals and bands the case can reach.</p>"
        f"<h2>Evidence and limits</h2><ul>{notes}"
        "<li>The intervals are wide because the bands are small; the score has not been "
        "validated outside its derivation centre.</li>"
        "<li>It supports, and does not replace, the heart team's judgement.</li></ul>"
        f"<p>Source: {source}.</p></body></html>"
    )
