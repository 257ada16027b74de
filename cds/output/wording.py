"""How results are put in words; one place, so the console, the card and the app say the same thing."""

from __future__ import annotations

from cds.scoring.result import EstimateResult, Points, ScoreResult

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
