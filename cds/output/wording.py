"""How results are put in words; one place, so the console, the card and the app say the same thing.

Numbers that belong to a score (its range, a group's scale, the experience thresholds, the size of
the derivation cohort) are read from its `ScoreDefinition` (cds/scoring/scores/), never restated here,
so the words cannot drift from what the engine computes.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from cds.scoring.model import ItemGroup, ScoreDefinition
from cds.scoring.result import EstimateResult, ItemResult, Points, Range, ScoreResult
from cds.scoring.scores import SCORES
from cds.scoring.scores.operator_cto import OPERATOR_CTO

_COUNT_WORDS = ("no", "one", "two", "three", "four", "five", "six")


def cohort_size(definition: ScoreDefinition) -> int:
    """Lesions behind the per-band estimates (Operator-CTO: Xiao 2021 Table 6 / Figure 1(b), 103+24+13+4 = 144)."""
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
    """The one rounding rule for every percentage we print (summary, detail, console, app).

    Whole percent, halves rounded up (0.875 → '88%'); a value that is not 0 or 1 but would round to
    it says so ('< 1%', '> 99%'), so an upper confidence limit of 0.998 never reads as 100 %.
    """
    return _percent_number(proportion) + "%"


def _percent_number(proportion: float) -> str:
    scaled = proportion * 100
    whole = int(Decimal(repr(scaled)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if whole == 0 and scaled > 0:
        return f"< {_SMALLEST}"
    if whole == 100 and scaled < 100:
        return f"> {_LARGEST}"
    return str(whole)


_SMALLEST, _LARGEST = 1, 99
"""The whole percentages nearest 0 and 100 that are not 0 or 100."""


def ci_text(ci95: tuple[float, float]) -> str:
    """'95% CI 29–77%', or '95% CI 95% to > 99%' when a limit is clamped by the rounding rule."""
    low, high = (_percent_number(x) for x in ci95)
    if low.isdigit() and high.isdigit():
        return f"95% CI {low}–{high}%"
    return f"95% CI {low}% to {high}%"


def band_name(band_id: str) -> str:
    return band_id.replace("_", " ")


def points_text(points: Points | None, low: Points, high: Points) -> str:
    """'4', or '2 to 5' when unknown inputs leave a range."""
    if points is not None:
        return f"{points:g}"
    return f"{low:g} to {high:g}"


def reachable_points(result: ScoreResult) -> list[Points]:
    """The totals some completion of the unknown items can give (within the score's range)."""
    totals = {sum(item.points for item in result.items if item.present)}
    for item in result.items:
        if item.present is None:
            totals |= {total + item.points for total in totals}
    return sorted(t for t in totals if result.min <= t <= result.max)


def result_points_text(result: ScoreResult) -> str:
    """'4'; '2 to 5'; '2 or 4' when a total in between cannot occur (e.g. only a −2 item unknown)."""
    if result.points is not None:
        return f"{result.points:g}"
    reachable = reachable_points(result)
    whole = all(float(p).is_integer() for p in (*reachable, result.min, result.max))
    every = list(range(int(result.min), int(result.max) + 1)) if whole else None
    if whole and reachable and len(reachable) <= 3 and reachable != every:
        return " or ".join(f"{p:g}" for p in reachable)
    return points_text(None, result.min, result.max)


def bands_text(result: ScoreResult) -> str:
    """'difficult', or 'easy or difficult' when the unknowns leave several bands possible."""
    if result.band is not None:
        return band_name(result.band)
    return bands_list_text(result.bands, _BANDS_BY_NAME.get(result.name, OPERATOR_BANDS))


OPERATOR_BANDS = frozenset(band.id for band in OPERATOR_CTO.bands)
_BANDS_BY_NAME = {d.name: frozenset(band.id for band in d.bands) for d in SCORES}


def bands_list_text(bands: list[str], every: frozenset[str] = OPERATOR_BANDS) -> str:
    """'easy or difficult'; 'any band' when every band of the score (`every`) is reachable."""
    if len(bands) > 2 and set(bands) == every:
        return "any band"
    return " or ".join(band_name(b) for b in bands)


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
    """'54% technical success (7 of 13 lesions; 95% CI 29–77%)' (docs/spec/scores.md §1)."""
    text = percent(estimate.proportion)
    if outcome_label:
        text += f" {outcome_label}"
    if estimate.n is not None and estimate.ci95 is not None:
        text += f" ({estimate.successes} of {estimate.n}; {ci_text(estimate.ci95)})"
    return text


EXPERT_OPERATOR = scenario_criteria(OPERATOR_CTO, "expert_operator")
"""The Operator-CTO `expert_operator` scenario (Xiao 2021 Table 2; docs/spec/scores.md §1)."""


def range_text(scenario: Range) -> str:
    """'0 to 3 points, easy or moderate': a what-if range with the bands it reaches."""
    bands = band_name(scenario.band) if scenario.band else bands_list_text(scenario.bands)
    return f"{points_text(scenario.points, scenario.min, scenario.max)} points, {bands}"


INPUT_WORDS = {
    "age_years": "age",
    "prior_mi": "prior MI",
    "prior_cabg": "prior CABG",
    "target_vessel": "vessel",
    "prior_cabg_target_vessel": "CABG to the target vessel",
    "stump": "stump shape",
    "proximal_cap_ambiguity": "proximal cap ambiguity",
    "bend_gt_45_in_occlusion": "bend within the occlusion",
    "tortuosity": "curvature",
    "occlusion_length_mm": "occlusion length",
    "rentrop_grade": "collateral filling (Rentrop grade)",
    "in_stent_occlusion": "in-stent occlusion",
    "retry_lesion": "previous failed attempt",
    "operator_annual_cto_volume": "operator's annual CTO-PCI volume",
    "operator_cto_years": "operator's years of CTO-PCI practice",
    "operator_last_year_success_rate": "operator's last-year CTO-PCI success",
}
"""Canonical inputs in a clinician's words, where the input name is not already one."""


def input_words(name: str) -> str:
    """'occlusion length', not `occlusion_length_mm`."""
    return INPUT_WORDS.get(name, name.replace("_", " "))


def item_points(item: ItemResult) -> str:
    """The points an item adds: its weight when present, 0 when absent, '0 or +1' when unknown."""
    if item.present is None:
        return f"0 or {item.points:+g}"
    return f"{item.points:+g}" if item.present else "0"


def count_text(n: int, noun: str) -> str:
    """'1 input', '3 inputs'."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def short_estimate_text(estimate: EstimateResult, with_ci: bool = True) -> str:
    """'54% (7/13; 95% CI 29–77%)': the same rounding as the detail, for a one-line summary."""
    text = percent(estimate.proportion)
    if estimate.n is None:
        return text
    count = f"{estimate.successes}/{estimate.n}"
    if with_ci and estimate.ci95 is not None:
        count += f"; {ci_text(estimate.ci95)}"
    return f"{text} ({count})"
