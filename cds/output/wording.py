"""How results are put in words; one place, so the console, the card and the app say the same thing."""

from __future__ import annotations

from cds.scoring.result import EstimateResult, Points, Range, ScoreResult

CAVEAT = (
    "Operator-CTO was derived in a small single-centre cohort (144 lesions, Xiao 2021): the band "
    "estimates are imprecise and have not been validated elsewhere."
)


def percent(proportion: float) -> str:
    """0.99029 → '99%', 0.875 → '87.5%', 0.004 → '0.4%': one decimal only when it says something."""
    text = f"{proportion * 100:.1f}".rstrip("0").rstrip(".")
    return f"{text}%"


def band_name(band_id: str) -> str:
    return band_id.replace("_", " ")


def points_text(points: Points | None, low: Points, high: Points) -> str:
    """'4', or '2 to 5' when unknown inputs leave a range."""
    if points is not None:
        return f"{points:g}"
    return f"{low:g} to {high:g}"


def bands_text(result: ScoreResult) -> str:
    """'difficult', or 'easy or difficult' when the unknowns leave several bands possible."""
    if result.band is not None:
        return band_name(result.band)
    return " or ".join(band_name(b) for b in result.bands)


OUTCOMES = {
    "technical_success": "technical success",
    "technical_failure": "technical failure",
    "guidewire_crossing_30min": "wire crossing ≤ 30 min",
    "first_attempt_success": "first-attempt success",
    "major_complication": "major complication",
}


def outcome_text(outcome: str) -> str:
    """A short name of the outcome a score predicts, for narrow columns."""
    return OUTCOMES.get(outcome, outcome.replace("_", " "))


def estimate_text(estimate: EstimateResult, outcome_label: str | None = None) -> str:
    """'53.8% (7 of 13; 95% CI 29–77%)', led by the outcome when one is given."""
    text = percent(estimate.proportion)
    if outcome_label:
        text += f" {outcome_label}"
    if estimate.n is not None and estimate.ci95 is not None:
        low, high = (round(x * 100) for x in estimate.ci95)
        text += f" ({estimate.successes} of {estimate.n}; 95% CI {low}–{high}%)"
    return text


EXPERT_OPERATOR = (
    "an operator meeting all three experience criteria (≥ 60 CTO-PCIs a year, ≥ 5 years of "
    "CTO-PCI practice, ≥ 90 % technical success last year)"
)
"""The Operator-CTO `expert_operator` scenario (Xiao 2021 Table 2; shared/spec/scores.md §1)."""


def range_text(scenario: Range) -> str:
    """'0 to 3 points, easy or moderate': a what-if range with the bands it reaches."""
    bands = (
        band_name(scenario.band) if scenario.band else " or ".join(map(band_name, scenario.bands))
    )
    return f"{points_text(scenario.points, scenario.min, scenario.max)} points, {bands}"


def count_text(n: int, noun: str) -> str:
    """'1 input', '3 inputs'."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def short_estimate_text(estimate: EstimateResult, with_ci: bool = True) -> str:
    """'54% (7/13; 95% CI 29–77%)': whole percentages, for a one-line summary of a small count."""
    text = f"{round(estimate.proportion * 100)}%"
    if estimate.n is None:
        return text
    count = f"{estimate.successes}/{estimate.n}"
    if with_ci and estimate.ci95 is not None:
        low, high = (round(x * 100) for x in estimate.ci95)
        count += f"; 95% CI {low}–{high}%"
    return f"{text} ({count})"
