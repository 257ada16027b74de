"""How results are put in words; one place, so the console, the card and the app say the same thing.

Numbers that belong to a score (its range, a group's scale, the experience thresholds, the size of
the derivation cohort) are read from its `ScoreDefinition` (cds/scoring/scores/), never restated here,
so the words cannot drift from what the engine computes.
"""

from __future__ import annotations

from cds.scoring.model import ItemGroup, ScoreDefinition
from cds.scoring.result import EstimateResult, Points, Range, ScoreResult
from cds.scoring.scores.operator_cto import OPERATOR_CTO

_COUNT_WORDS = ("no", "one", "two", "three", "four", "five", "six")


def cohort_size(definition: ScoreDefinition) -> int:
    """Lesions behind the per-band estimates (Operator-CTO: Xiao 2021 Table 2, 103+24+13+4 = 144)."""
    return sum(band.estimate.n or 0 for band in definition.bands if band.estimate is not None)


CAVEAT = (
    f"Operator-CTO was derived in a small single-centre cohort ({cohort_size(OPERATOR_CTO)} "
    "lesions, Xiao 2021): the band estimates are imprecise and have not been validated elsewhere."
)


def group_scale(definition: ScoreDefinition, group: ItemGroup) -> str:
    """'scale 0 to 9': the points one group of items can add up to."""
    points = [item.points for item in definition.items if item.group == group]
    low = sum(p for p in points if p < 0)
    high = sum(p for p in points if p > 0)
    return f"scale {low:g} to {high:g}"


def scenario_criteria(definition: ScoreDefinition, scenario_id: str) -> str:
    """'an operator meeting all three experience criteria (annual CTO-PCI volume ≥ 60, ...)': the
    labels of the items a what-if scenario sets, so the thresholds are the definition's."""
    scenario = next(s for s in definition.scenarios if s.id == scenario_id)
    labels = [
        item.label.removeprefix("operator's ")
        for item in definition.items
        if item.rule.input in scenario.inputs
    ]
    count = _COUNT_WORDS[len(labels)] if len(labels) < len(_COUNT_WORDS) else str(len(labels))
    return f"an operator meeting all {count} experience criteria ({', '.join(labels)})"


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
    "first_attempt_success": "first-attempt success",
    "major_complication": "major complication",
}
"""Short names of outcomes whose definition label is long; others are shown as the label says."""


def outcome_text(result: ScoreResult) -> str:
    """A short name of the outcome a score predicts, for narrow columns."""
    return OUTCOMES.get(result.outcome, result.outcome_label)


def estimate_text(estimate: EstimateResult, outcome_label: str | None = None) -> str:
    """'53.8% (7 of 13; 95% CI 29–77%)', led by the outcome when one is given."""
    text = percent(estimate.proportion)
    if outcome_label:
        text += f" {outcome_label}"
    if estimate.n is not None and estimate.ci95 is not None:
        low, high = (round(x * 100) for x in estimate.ci95)
        text += f" ({estimate.successes} of {estimate.n}; 95% CI {low}–{high}%)"
    return text


EXPERT_OPERATOR = scenario_criteria(OPERATOR_CTO, "expert_operator")
"""The Operator-CTO `expert_operator` scenario (Xiao 2021 Table 2; docs/spec/scores.md §1)."""


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
