"""Inline SVG of the Operator-CTO bands: success proportion and Wilson 95 % CI per band.

Every number comes from the score definition (cds/scoring/scores/operator_cto.py, Xiao 2021 Figure 2)
and `cds.scoring.estimate.wilson_interval`; nothing is restated here. The lesion's band, when the
inputs settle it, is drawn highlighted and named in the text alternative.
"""

from __future__ import annotations

from html import escape

from cds.scoring.estimate import wilson_interval
from cds.scoring.model import ScoreDefinition

WIDTH, HEIGHT = 420, 200
LEFT, BOTTOM, TOP = 40, 40, 16


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def band_chart(definition: ScoreDefinition, band: str | None) -> str:
    bands = definition.bands
    slot = (WIDTH - LEFT - 10) / max(1, len(bands))
    plot = HEIGHT - BOTTOM - TOP

    def y(p: float) -> float:
        return TOP + (1 - p) * plot

    parts = [
        f'<line x1="{LEFT}" y1="{y(0):.1f}" x2="{WIDTH - 10}" y2="{y(0):.1f}" class="axis"/>',
        f'<text x="{LEFT - 4}" y="{y(1):.1f}" class="tick" text-anchor="end">100 %</text>',
        f'<text x="{LEFT - 4}" y="{y(0.5):.1f}" class="tick" text-anchor="end">50 %</text>',
        f'<text x="{LEFT - 4}" y="{y(0):.1f}" class="tick" text-anchor="end">0 %</text>',
    ]
    described = []
    for i, b in enumerate(bands):
        est = b.estimate
        x0 = LEFT + i * slot + slot * 0.2
        w = slot * 0.6
        cls = "bar current" if b.id == band else "bar"
        label = escape(b.label)
        parts.append(
            f'<text x="{x0 + w / 2:.1f}" y="{HEIGHT - BOTTOM + 16}" class="tick" '
            f'text-anchor="middle">{label}</text>'
        )
        if est is None:
            continue
        text = f"{b.label}: {_pct(est.proportion)}"
        parts.append(
            f'<rect x="{x0:.1f}" y="{y(est.proportion):.1f}" width="{w:.1f}" '
            f'height="{y(0) - y(est.proportion):.1f}" class="{cls}" data-band="{escape(b.id)}"/>'
        )
        if est.successes is not None and est.n is not None:
            lo, hi = wilson_interval(est.successes, est.n)
            cx = x0 + w / 2
            parts.append(
                f'<line x1="{cx:.1f}" y1="{y(lo):.1f}" x2="{cx:.1f}" y2="{y(hi):.1f}" class="ci"/>'
            )
            text += f" ({est.successes}/{est.n}, 95 % CI {_pct(lo)}–{_pct(hi)})"
            parts.append(
                f'<text x="{x0 + w / 2:.1f}" y="{HEIGHT - BOTTOM + 30}" class="tick" '
                f'text-anchor="middle">n={est.n}</text>'
            )
        described.append(text + (" — this lesion" if b.id == band else ""))
    title = f"{definition.outcome_label} by {definition.name} band: " + "; ".join(described)
    return (
        f'<svg class="bands" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>{"".join(parts)}</svg>'
    )
