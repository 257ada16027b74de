"""Independent reference implementation ("oracle") of the CTO-PCI scores.

Written only from ``docs/spec/scores.md`` and ``docs/spec/inputs.md``, without
looking at ``cds/scoring/``. It is deliberately naive: every score is a table of items, each item
reads exactly one canonical input, and unknown inputs are resolved by brute-force enumeration of
every completion over a grid of representative values (every threshold of the spec, and values
just below and above it). The tests compare the engine's ``score_json`` output against it.

Decisions for the spec's open points (taken by the project, encoded here):

- ``non_lad`` is true for every target vessel except LAD (LM, RAMUS and GRAFT count as non-LAD);
  CL-score reads ``prior_cabg_target_vessel``.
- ``missing`` lists only inputs that are absent or ``None``; ``tortuosity = "unseen"`` is a known
  value (it makes ``curvature`` / ``tortuosity_moderate_severe`` indeterminate, which widens
  ``min``/``max`` and sets ``points`` to ``None``, but it is not "missing").
- An estimate is given only when every completion falls into one stratum with a published number.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

Number = int | float
Truth = bool | None  # None = indeterminate
Estimate = dict[str, Any]

WILSON_Z = 1.959963984540054

# ---------------------------------------------------------------------------------------------
# Input domains used to enumerate completions of unknown inputs.
# Numeric grids contain every threshold used by any item and values on both sides of it.
# ---------------------------------------------------------------------------------------------

_BOOL: tuple[bool, ...] = (False, True)

DOMAINS: dict[str, tuple[object, ...]] = {
    "age_years": (0, 64, 65, 66, 69, 70, 71, 74, 75, 76, 90),
    "sex": ("female", "male", "other"),
    "prior_cabg": _BOOL,
    "prior_cabg_target_vessel": _BOOL,
    "prior_mi": _BOOL,
    "target_vessel": ("LM", "LAD", "LCX", "RCA", "RAMUS", "GRAFT"),
    "stump": ("tapered", "blunt", "no_stump"),
    "proximal_cap_ambiguity": _BOOL,
    "calcification": ("none", "mild", "moderate", "severe"),
    "bend_gt_45_in_occlusion": _BOOL,
    "tortuosity": ("none", "mild", "moderate", "severe", "unseen"),
    "occlusion_length_mm": (0, 19.9, 20, 20.1, 22.9, 23, 40),
    "distal_vessel_disease": _BOOL,
    "rentrop_grade": (0, 1, 2, 3),
    "interventional_collaterals": _BOOL,
    "in_stent_occlusion": _BOOL,
    "ostial_location": _BOOL,
    "retry_lesion": _BOOL,
    "retrograde_approach": _BOOL,
    "operator_annual_cto_volume": (0, 59.9, 60, 100),
    "operator_cto_years": (0, 4, 4.5, 4.6, 5, 10),
    "operator_last_year_success_rate": (0, 0.5, 0.899, 0.9, 1),
}


# ---------------------------------------------------------------------------------------------
# Item predicates ("Item derivations from canonical inputs" in scores.md).
# Each takes the (known) input value and returns True / False, or None when the item cannot be
# decided from that value.
# ---------------------------------------------------------------------------------------------


def _is_true(v: object) -> Truth:
    return v is True


def _is_false(v: object) -> Truth:
    return v is False


def _blunt(v: object) -> Truth:
    return v in ("blunt", "no_stump")


def _any_calcification(v: object) -> Truth:
    return v in ("mild", "moderate", "severe")


def _severe_calcification(v: object) -> Truth:
    return v == "severe"


def _tortuosity_moderate_severe(v: object) -> Truth:
    if v == "unseen":
        return None
    return v in ("moderate", "severe")


def _tortuosity_severe_or_unseen(v: object) -> Truth:
    return v in ("severe", "unseen")


def _num(v: object) -> float:
    assert isinstance(v, int | float), v
    assert not isinstance(v, bool), v
    return float(v)


def _ge(threshold: float) -> Callable[[object], Truth]:
    def pred(v: object) -> Truth:
        return _num(v) >= threshold

    return pred


def _years_ge(threshold: float) -> Callable[[object], Truth]:
    """Years of practice counted as scores.md §1 says: whole years, a remainder of more than six
    months counts as one more year (4.6 → 5, 4.5 → 4)."""

    def pred(v: object) -> Truth:
        years = _num(v)
        counted = math.floor(years) + (1 if years - math.floor(years) > 0.5 else 0)
        return counted >= threshold

    return pred


def _gt(threshold: float) -> Callable[[object], Truth]:
    def pred(v: object) -> Truth:
        return _num(v) > threshold

    return pred


def _lt(threshold: float) -> Callable[[object], Truth]:
    def pred(v: object) -> Truth:
        return _num(v) < threshold

    return pred


def _eq(value: object) -> Callable[[object], Truth]:
    def pred(v: object) -> Truth:
        return v == value

    return pred


def _ne(value: object) -> Callable[[object], Truth]:
    def pred(v: object) -> Truth:
        return v != value

    return pred


# ---------------------------------------------------------------------------------------------
# Score tables.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OItem:
    id: str
    points: Number
    input: str
    test: Callable[[object], Truth]


@dataclass(frozen=True)
class OBand:
    id: str
    lo: float  # inclusive; -inf for the first band
    hi: float  # inclusive; +inf for the last band

    def contains(self, total: float) -> bool:
        return self.lo <= total <= self.hi


@dataclass(frozen=True)
class OScore:
    id: str
    items: tuple[OItem, ...]
    bands: tuple[OBand, ...]
    # (set of reachable totals, reachable band ids) -> estimate or None
    estimate: Callable[[frozenset[float], list[str]], Estimate | None]


_INF = math.inf


def wilson(successes: int, n: int, z: float = WILSON_Z) -> tuple[float, float]:
    """95 % Wilson score interval for successes / n (textbook formula)."""
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (centre - half, centre + half)


def _no_estimate(totals: frozenset[float], bands: list[str]) -> Estimate | None:
    return None


_OPERATOR_CTO_COUNTS: dict[str, tuple[int, int]] = {
    "easy": (102, 103),
    "moderate": (21, 24),
    "difficult": (7, 13),
    "extremely_difficult": (1, 4),
}


def _operator_cto_estimate(totals: frozenset[float], bands: list[str]) -> Estimate | None:
    if len(bands) != 1:
        return None
    s, n = _OPERATOR_CTO_COUNTS[bands[0]]
    lo, hi = wilson(s, n)
    return {"proportion": s / n, "successes": s, "n": n, "ci95": [lo, hi]}


def _proportion_only(p: float) -> Estimate:
    return {"proportion": p, "successes": None, "n": None, "ci95": None}


def _band_proportion(
    table: dict[str, float],
) -> Callable[[frozenset[float], list[str]], Estimate | None]:
    def est(totals: frozenset[float], bands: list[str]) -> Estimate | None:
        if len(bands) != 1:
            return None
        return _proportion_only(table[bands[0]])

    return est


def _castle_estimate(totals: frozenset[float], bands: list[str]) -> Estimate | None:
    if all(t <= 1 for t in totals):
        return _proportion_only(0.08)
    if all(t >= 4 for t in totals):
        return _proportion_only(0.35)
    return None


SCORES: tuple[OScore, ...] = (
    OScore(
        "operator_cto",
        (
            OItem("prior_cabg_target_vessel", 1, "prior_cabg_target_vessel", _is_true),
            OItem("blunt_stump", 1, "stump", _blunt),
            OItem("calcification", 1, "calcification", _any_calcification),
            OItem("curvature", 1, "tortuosity", _tortuosity_moderate_severe),
            OItem("occlusion_length_ge_20mm", 1, "occlusion_length_mm", _ge(20)),
            OItem("distal_vessel_disease", 1, "distal_vessel_disease", _is_true),
            OItem("rentrop_lt_2", 1, "rentrop_grade", _lt(2)),
            OItem("in_stent_occlusion", 1, "in_stent_occlusion", _is_true),
            OItem("ostial_location", 1, "ostial_location", _is_true),
            OItem("operator_volume_ge_60", -1, "operator_annual_cto_volume", _ge(60)),
            OItem("operator_years_ge_5", -1, "operator_cto_years", _years_ge(5)),
            OItem("operator_success_ge_90", -2, "operator_last_year_success_rate", _ge(0.9)),
        ),
        (
            OBand("easy", -_INF, 2),
            OBand("moderate", 3, 3),
            OBand("difficult", 4, 4),
            OBand("extremely_difficult", 5, _INF),
        ),
        _operator_cto_estimate,
    ),
    OScore(
        "j_cto",
        (
            OItem("blunt_stump", 1, "stump", _blunt),
            OItem("calcification", 1, "calcification", _any_calcification),
            OItem("bending_gt_45", 1, "bend_gt_45_in_occlusion", _is_true),
            OItem("occlusion_length_ge_20mm", 1, "occlusion_length_mm", _ge(20)),
            OItem("retry_lesion", 1, "retry_lesion", _is_true),
        ),
        (
            OBand("easy", -_INF, 0),
            OBand("intermediate", 1, 1),
            OBand("difficult", 2, 2),
            OBand("very_difficult", 3, _INF),
        ),
        _band_proportion(
            {"easy": 0.88, "intermediate": 0.67, "difficult": 0.42, "very_difficult": 0.10}
        ),
    ),
    OScore(
        "progress_cto",
        (
            OItem("proximal_cap_ambiguity", 1, "proximal_cap_ambiguity", _is_true),
            OItem("tortuosity_moderate_severe", 1, "tortuosity", _tortuosity_moderate_severe),
            OItem("circumflex_cto", 1, "target_vessel", _eq("LCX")),
            OItem("no_interventional_collaterals", 1, "interventional_collaterals", _is_false),
        ),
        (),
        _no_estimate,
    ),
    OScore(
        "recharge",
        (
            OItem("blunt_stump", 1, "stump", _blunt),
            OItem("calcification", 1, "calcification", _any_calcification),
            OItem("bending_ge_45", 1, "bend_gt_45_in_occlusion", _is_true),
            OItem("occlusion_length_gt_20mm", 1, "occlusion_length_mm", _gt(20)),
            OItem("distal_vessel_disease", 1, "distal_vessel_disease", _is_true),
            OItem("prior_cabg_target_vessel", 1, "prior_cabg_target_vessel", _is_true),
        ),
        (),
        _no_estimate,
    ),
    OScore(
        "cl_score",
        (
            OItem("prior_cabg_target_vessel", 1.5, "prior_cabg_target_vessel", _is_true),
            OItem("prior_mi", 1, "prior_mi", _is_true),
            OItem("blunt_stump", 1, "stump", _blunt),
            OItem("severe_calcification", 2, "calcification", _severe_calcification),
            OItem("non_lad", 1, "target_vessel", _ne("LAD")),
            OItem("occlusion_length_ge_20mm", 1.5, "occlusion_length_mm", _ge(20)),
        ),
        (),
        _no_estimate,
    ),
    OScore(
        "ora",
        (
            OItem("ostial_location", 1, "ostial_location", _is_true),
            OItem("rentrop_lt_2", 2, "rentrop_grade", _lt(2)),
            OItem("age_ge_75", 1, "age_years", _ge(75)),
        ),
        (
            OBand("easy", -_INF, 0),
            OBand("intermediate", 1, 1),
            OBand("difficult", 2, 2),
            OBand("very_difficult", 3, _INF),
        ),
        _no_estimate,
    ),
    OScore(
        "castle",
        (
            OItem("prior_cabg", 1, "prior_cabg", _is_true),
            OItem("age_ge_70", 1, "age_years", _ge(70)),
            OItem("stump_blunt_or_invisible", 1, "stump", _blunt),
            OItem("tortuosity_severe_or_unseen", 1, "tortuosity", _tortuosity_severe_or_unseen),
            OItem("occlusion_length_ge_20mm", 1, "occlusion_length_mm", _ge(20)),
            OItem("severe_calcification", 1, "calcification", _severe_calcification),
        ),
        (),
        _castle_estimate,
    ),
    OScore(
        "progress_complications",
        (
            OItem("age_gt_65", 3, "age_years", _gt(65)),
            OItem("occlusion_length_ge_23mm", 2, "occlusion_length_mm", _ge(23)),
            OItem("retrograde_approach", 1, "retrograde_approach", _is_true),
        ),
        (
            OBand("low", -_INF, 2),
            OBand("intermediate", 3, 4),
            OBand("high", 5, _INF),
        ),
        _band_proportion({"low": 0.004, "intermediate": 0.018, "high": 0.065}),
    ),
)

SCORE_IDS: tuple[str, ...] = tuple(s.id for s in SCORES)


# ---------------------------------------------------------------------------------------------
# Evaluation.
# ---------------------------------------------------------------------------------------------


def _clean(x: Number) -> Number:
    """Ints where integral (CL-score keeps its halves)."""
    if isinstance(x, float) and x.is_integer():
        return int(x)
    return x


def _known(inputs: Mapping[str, object], name: str) -> bool:
    return inputs.get(name) is not None


def _completion_totals(score: OScore, inputs: Mapping[str, object]) -> frozenset[float]:
    """Every total reachable by some completion, by brute force.

    A completion fixes every unknown input the score needs to a value of its domain, and every
    item that is indeterminate for its (known or completed) value to present or absent.
    Inputs are enumerated one by one (each input's items depend on that input only), so the set
    of reachable totals is the set of sums over the product of per-input contribution sets.
    """
    needed: list[str] = []
    for item in score.items:
        if item.input not in needed:
            needed.append(item.input)

    per_input: list[set[float]] = []
    for name in needed:
        values = [inputs[name]] if _known(inputs, name) else list(DOMAINS[name])
        items = [it for it in score.items if it.input == name]
        contributions: set[float] = set()
        for value in values:
            truths = [it.test(value) for it in items]
            options = [(False, True) if t is None else (t,) for t in truths]
            for choice in itertools.product(*options):
                contributions.add(
                    float(
                        sum(it.points for it, present in zip(items, choice, strict=True) if present)
                    )
                )
        per_input.append(contributions)

    return frozenset(float(sum(combo)) for combo in itertools.product(*per_input))


def evaluate(score: OScore, inputs: Mapping[str, object]) -> dict[str, Any]:
    """The contract fields of one score for the canonical ``inputs``."""
    items_out: list[dict[str, Any]] = []
    missing: list[str] = []
    determinate = True
    for item in score.items:
        if _known(inputs, item.input):
            present = item.test(inputs[item.input])
        else:
            present = None
            if item.input not in missing:
                missing.append(item.input)
        if present is None:
            determinate = False
        items_out.append({"id": item.id, "points": _clean(item.points), "present": present})

    totals = _completion_totals(score, inputs)
    lo, hi = min(totals), max(totals)
    reached = [b.id for b in score.bands if any(b.contains(t) for t in totals)]

    points: Number | None = None
    if determinate:
        assert lo == hi, (score.id, totals)
        points = _clean(lo)

    return {
        "points": points,
        "min": _clean(lo),
        "max": _clean(hi),
        "band": reached[0] if len(reached) == 1 else None,
        "bands": reached,
        "estimate": score.estimate(totals, reached),
        "items": items_out,
        "missing": missing,
    }


def oracle(inputs: Mapping[str, object]) -> dict[str, dict[str, Any]]:
    """All scores for ``inputs`` (missing key or ``None`` = unknown), keyed by score id."""
    return {score.id: evaluate(score, inputs) for score in SCORES}
