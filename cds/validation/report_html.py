"""A self-contained HTML validation report: SVG figures inline, no script, no CDN, no network.

matplotlib (Agg backend, never a display) draws the ROC curves of every score on one plot, a
calibration plot per score (site observed vs the site's logistic model vs the published estimate),
and Operator-CTO's success per band with Wilson intervals.
"""

from __future__ import annotations

import html
import io
from pathlib import Path

from cds.validation.analysis import PRIMARY, ScoreValidation, ValidationResult
from cds.validation.report_text import fmt_ci, fmt_p, fmt_pct
from cds.validation.stats import roc_points


def _svg(figure: object) -> str:
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})  # type: ignore[attr-defined]
    plt.close(figure)  # type: ignore[arg-type]
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _roc(result: ValidationResult) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    ax.plot([0, 1], [0, 1], color="#999", linestyle=":", linewidth=1)
    for s in result.scores.values():
        if s.auc is None:
            continue
        fpr, tpr = roc_points(s.points, s.outcomes)
        # Straight segments: a tie between a success and a failure counts one half, as in the AUC.
        ax.plot(fpr, tpr, marker=".", label=f"{s.name} (AUC {s.auc:.3f}, n {s.n})")
    ax.set_xlabel("1 − specificity (successes with score ≥ t)")
    ax.set_ylabel("sensitivity (failures with score ≥ t)")
    ax.set_title("ROC: score predicting technical failure")
    ax.legend(loc="lower right", fontsize=8)
    return _svg(fig)


def _calibration(s: ScoreValidation) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    names = list(s.bands)
    xs = range(len(names))
    observed = [b.successes / b.n for b in s.bands.values()]
    low = [o - b.ci95[0] for o, b in zip(observed, s.bands.values(), strict=True)]
    high = [b.ci95[1] - o for o, b in zip(observed, s.bands.values(), strict=True)]
    ax.errorbar(xs, observed, yerr=[low, high], fmt="o", capsize=4, label="site observed (Wilson)")
    predicted = [b.predicted for b in s.bands.values()]
    if any(p is not None for p in predicted):
        ax.plot(
            [x for x, p in zip(xs, predicted, strict=True) if p is not None],
            [p for p in predicted if p is not None],
            "s--",
            label="site logistic model",
        )
    published = [
        (x, b.published.as_success)
        for x, b in zip(xs, s.bands.values(), strict=True)
        if b.published is not None and b.published.as_success is not None
    ]
    if published:
        ax.plot(*zip(*published, strict=True), "D", color="#c33", label="published")
    ax.set_xticks(list(xs), names, rotation=20, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("technical success")
    ax.set_title(f"{s.name}: calibration by {s.grouping.rstrip('s')}")
    ax.legend(fontsize=7, loc="lower left")
    return _svg(fig)


def _bars(s: ScoreValidation) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    names = list(s.bands)
    rates = [b.successes / b.n for b in s.bands.values()]
    err = [
        [r - b.ci95[0] for r, b in zip(rates, s.bands.values(), strict=True)],
        [b.ci95[1] - r for r, b in zip(rates, s.bands.values(), strict=True)],
    ]
    ax.bar(names, rates, yerr=err, capsize=5, color="#4a7fb5")
    for i, b in enumerate(s.bands.values()):
        ax.text(i, 0.02, f"{b.successes}/{b.n}", ha="center", color="white", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("technical success (Wilson 95 % CI)")
    ax.set_title(f"{s.name}: observed success per band")
    return _svg(fig)


def _table(result: ValidationResult) -> str:
    rows = []
    for s in result.scores.values():
        vs = "–"
        if s.vs_operator_cto is not None:
            v = s.vs_operator_cto
            vs = f"{v.diff:+.3f} ({fmt_ci(v.ci95)}), p {fmt_p(v.p)}"
        auc = "–" if s.auc is None else f"{s.auc:.3f} ({fmt_ci(s.auc_ci95)})"
        hl = "–" if s.hl_chi2 is None else f"{s.hl_chi2:.3f} (df {s.hl_df}, p {fmt_p(s.hl_p)})"
        reasons = ", ".join(f"{k} ({v})" for k, v in list(s.excluded.reasons.items())[:3])
        cells = [s.name, s.n, s.events, f"{s.excluded.count} {reasons}", auc, vs, hl]
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "score",
            "n",
            "successes",
            "excluded",
            "AUC (95 % CI)",
            "vs Operator-CTO",
            "HL χ²",
        )
    )
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _bands_table(s: ScoreValidation) -> str:
    rows = []
    for name, b in s.bands.items():
        pub = "–"
        if b.published is not None:
            rate = b.published.as_success
            pub = (
                fmt_pct(rate)
                if rate is not None
                else f"{fmt_pct(b.published.proportion)} ({b.published.outcome})"
            )
        cells = [
            name,
            f"{b.successes}/{b.n}",
            f"{fmt_pct(b.successes / b.n)} ({fmt_pct(b.ci95[0])}–{fmt_pct(b.ci95[1])})",
            fmt_pct(b.predicted),
            pub,
        ]
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    head = "".join(
        f"<th>{h}</th>" for h in ("group", "site", "observed (95 % CI)", "site model", "published")
    )
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


_STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;color:#222}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;
text-align:right}td:first-child,th:first-child{text-align:left}figure{margin:1rem 0}
.err{color:#a00;font-family:monospace;font-size:.85rem}"""


def render_html(result: ValidationResult) -> str:
    """The whole report as one HTML string."""
    import matplotlib

    matplotlib.use("Agg")
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>CTO-PCI score validation: {html.escape(result.source)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>CTO-PCI score validation</h1><p>{html.escape(result.source)}: "
        f"{result.lesions} lesions analysed, {result.rows_rejected} rows rejected.</p>",
    ]
    if result.mappings is not None:
        parts.append(
            "<p>Inputs read through the mapping tables version "
            f"<code>{html.escape(result.mappings)}</code>.</p>"
        )
    if result.errors:
        parts.append("<h2>Rejected rows</h2>")
        parts += [f"<div class='err'>{html.escape(e)}</div>" for e in result.errors]
    if result.absent_inputs:
        parts.append(
            "<p>No column (unknown in every row): " + html.escape(", ".join(result.absent_inputs))
        )
    parts += ["<h2>Discrimination and calibration</h2>", _table(result)]
    if any(s.auc is not None for s in result.scores.values()):
        parts.append(f"<figure>{_roc(result)}</figure>")
    primary = result.scores.get(PRIMARY)
    if primary is not None and primary.n:
        parts += ["<h2>Operator-CTO per band</h2>", f"<figure>{_bars(primary)}</figure>"]
    parts.append("<h2>Calibration per score</h2>")
    for s in result.scores.values():
        if not s.n:
            continue
        parts += [f"<h3>{html.escape(s.name)}</h3>", _bands_table(s)]
        parts.append(f"<figure>{_calibration(s)}</figure>")
        if s.hl_chi2 is not None:
            parts.append(
                f"<p>Hosmer–Lemeshow χ² {s.hl_chi2:.3f}, df {s.hl_df}, p {fmt_p(s.hl_p)}; grouping: "
                f"{s.hl_grouping.replace('_', ' ')} ({len(s.hl_groups)} groups).</p>"
            )
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(result: ValidationResult, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "validation.html"
    path.write_text(render_html(result), encoding="utf-8")
    return path
