"""Band boundaries, ranges under unknown inputs and published estimates (docs/spec/scores.md)."""

from __future__ import annotations

from typing import Any

import pytest

from cds import score_json
from tests.scoring.cases import NOTHING_PRESENT, item, scores, without

# Lesion items of Operator-CTO, in the order used to build a given lesion total.
LESION: list[dict[str, Any]] = [
    {"prior_cabg_target_vessel": True},
    {"stump": "blunt"},
    {"calcification": "mild"},
    {"tortuosity": "moderate"},
    {"occlusion_length_mm": 25},
    {"distal_vessel_disease": True},
    {"rentrop_grade": 0},
    {"in_stent_occlusion": True},
    {"ostial_location": True},
]
EXPERT = {
    "operator_annual_cto_volume": 60,
    "operator_cto_years": 5,
    "operator_last_year_success_rate": 0.9,
}


def lesion(points: int) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for change in LESION[:points]:
        changes.update(change)
    return changes


@pytest.mark.parametrize(
    ("lesion_points", "band", "successes", "n"),
    [
        (0, "easy", 102, 103),
        (2, "easy", 102, 103),
        (3, "moderate", 21, 24),
        (4, "difficult", 7, 13),
        (5, "extremely_difficult", 1, 4),
        (9, "extremely_difficult", 1, 4),
    ],
)
def test_operator_cto_band_boundaries(
    lesion_points: int, band: str, successes: int, n: int
) -> None:
    result = scores(**lesion(lesion_points))["operator_cto"]
    assert result["points"] == lesion_points
    assert result["band"] == band
    assert result["bands"] == [band]
    assert result["outcome"] == "technical_success"
    assert result["estimate"]["successes"] == successes
    assert result["estimate"]["n"] == n
    assert result["estimate"]["proportion"] == pytest.approx(successes / n)


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    # Wilson 95 % intervals computed by hand: centre (p + z²/2n)/(1 + z²/n), z = 1.96.
    [
        (102, 103, 0.9470, 0.9983),
        (21, 24, 0.6900, 0.9566),
        (7, 13, 0.2914, 0.7679),
        (1, 4, 0.0456, 0.6994),
    ],
)
def test_operator_cto_estimate_carries_a_wilson_interval(
    successes: int, n: int, low: float, high: float
) -> None:
    points = {103: 0, 24: 3, 13: 4, 4: 5}[n]
    estimate = scores(**lesion(points))["operator_cto"]["estimate"]
    assert estimate["ci95"] == [pytest.approx(low, abs=1e-4), pytest.approx(high, abs=1e-4)]


def test_operator_cto_extremes_minus_four_and_plus_nine() -> None:
    best = scores(**EXPERT)["operator_cto"]
    assert (best["points"], best["band"]) == (-4, "easy")
    worst = scores(**lesion(9))["operator_cto"]
    assert (worst["points"], worst["band"]) == (9, "extremely_difficult")


def test_operator_lowers_a_difficult_lesion_to_easy() -> None:
    result = scores(**lesion(4), **EXPERT)["operator_cto"]
    assert result["points"] == 0
    assert result["band"] == "easy"
    assert result["groups"]["lesion"]["points"] == 4
    assert result["groups"]["operator"]["points"] == -4
    without_expert = scores(**lesion(4))["operator_cto"]
    assert without_expert["band"] == "difficult"
    assert without_expert["scenarios"]["expert_operator"]["band"] == "easy"
    assert without_expert["scenarios"]["expert_operator"]["points"] == 0


@pytest.mark.parametrize(
    ("change", "item_id", "present"),
    [
        ({"operator_last_year_success_rate": 0.899}, "operator_success_ge_90", False),
        ({"operator_last_year_success_rate": 0.9}, "operator_success_ge_90", True),
        ({"operator_last_year_success_rate": 1}, "operator_success_ge_90", True),
        ({"operator_annual_cto_volume": 59.9}, "operator_volume_ge_60", False),
        ({"operator_annual_cto_volume": 60}, "operator_volume_ge_60", True),
        ({"operator_cto_years": 4}, "operator_years_ge_5", False),
        ({"operator_cto_years": 5}, "operator_years_ge_5", True),
        ({"occlusion_length_mm": 19.9}, "occlusion_length_ge_20mm", False),
        ({"occlusion_length_mm": 20}, "occlusion_length_ge_20mm", True),
        ({"occlusion_length_mm": 20.1}, "occlusion_length_ge_20mm", True),
    ],
)
def test_operator_cto_thresholds(change: dict[str, Any], item_id: str, present: bool) -> None:
    assert item(scores(**change)["operator_cto"], item_id)["present"] is present


@pytest.mark.parametrize(
    ("length", "j_cto", "recharge", "complications"),
    [
        (19.9, False, False, False),
        (20, True, False, False),
        (20.1, True, True, False),
        (22.9, True, True, False),
        (23, True, True, True),
    ],
)
def test_length_cut_offs(length: float, j_cto: bool, recharge: bool, complications: bool) -> None:
    result = scores(occlusion_length_mm=length)
    assert item(result["j_cto"], "occlusion_length_ge_20mm")["present"] is j_cto
    assert item(result["cl_score"], "occlusion_length_ge_20mm")["present"] is j_cto
    assert item(result["castle"], "occlusion_length_ge_20mm")["present"] is j_cto
    assert item(result["recharge"], "occlusion_length_gt_20mm")["present"] is recharge
    assert (
        item(result["progress_complications"], "occlusion_length_ge_23mm")["present"]
        is complications
    )


@pytest.mark.parametrize(
    ("age", "gt_65", "ge_70", "ge_75"),
    [
        (65, False, False, False),
        (66, True, False, False),
        (69, True, False, False),
        (70, True, True, False),
        (74, True, True, False),
        (75, True, True, True),
    ],
)
def test_age_cut_offs(age: int, gt_65: bool, ge_70: bool, ge_75: bool) -> None:
    result = scores(age_years=age)
    assert item(result["progress_complications"], "age_gt_65")["present"] is gt_65
    assert item(result["castle"], "age_ge_70")["present"] is ge_70
    assert item(result["ora"], "age_ge_75")["present"] is ge_75


def test_unknown_success_rate_reaches_bands_that_skip_one() -> None:
    # Lesion 5, volume ≥ 60 (−1), years < 5: total 4 with success < 90 %, 2 with success ≥ 90 %.
    result = without("operator_last_year_success_rate", **lesion(5), operator_annual_cto_volume=80)[
        "operator_cto"
    ]
    assert result["points"] is None
    assert (result["min"], result["max"]) == (2, 4)
    assert result["bands"] == ["easy", "difficult"]  # moderate (3) is not reachable
    assert result["band"] is None
    assert result["estimate"] is None
    assert result["missing"] == ["operator_last_year_success_rate"]
    assert item(result, "operator_success_ge_90")["present"] is None


def test_unknown_inputs_inside_one_band_keep_the_band_and_estimate() -> None:
    # Lesion 9, one lesion input unknown: 8 or 9, both extremely difficult.
    result = without("ostial_location", **lesion(8))["operator_cto"]
    assert (result["points"], result["min"], result["max"]) == (None, 8, 9)
    assert result["band"] == "extremely_difficult"
    assert result["estimate"]["n"] == 4
    assert result["missing"] == ["ostial_location"]


def test_unknown_operator_item_lowers_the_minimum() -> None:
    result = without("operator_cto_years")["operator_cto"]
    assert (result["min"], result["max"]) == (-1, 0)
    assert result["band"] == "easy"


def test_cl_score_counts_half_points() -> None:
    result = scores(prior_cabg_target_vessel=True)["cl_score"]
    assert result["points"] == 1.5
    result = scores(prior_cabg_target_vessel=True, occlusion_length_mm=30)["cl_score"]
    assert result["points"] == 3
    full = scores(
        prior_cabg_target_vessel=True,
        prior_mi=True,
        stump="blunt",
        calcification="severe",
        target_vessel="RCA",
        occlusion_length_mm=30,
    )["cl_score"]
    assert full["points"] == 8
    open_range = without("occlusion_length_mm", "prior_mi")["cl_score"]
    assert (open_range["min"], open_range["max"]) == (0, 2.5)
    assert open_range["bands"] == []
    assert open_range["band"] is None


def test_castle_counts_invisible_stump_and_unseen_tortuosity_as_present() -> None:
    result = scores(stump="no_stump", tortuosity="unseen")
    castle = result["castle"]
    assert item(castle, "stump_blunt_or_invisible")["present"] is True
    assert item(castle, "tortuosity_severe_or_unseen")["present"] is True
    assert castle["points"] == 2
    assert castle["missing"] == []
    # ... while "unseen" leaves Operator-CTO curvature (and PROGRESS-CTO tortuosity) undecided.
    operator = result["operator_cto"]
    assert item(operator, "blunt_stump")["present"] is True
    assert item(operator, "curvature")["present"] is None
    assert (operator["points"], operator["min"], operator["max"]) == (None, 1, 2)
    assert operator["missing"] == []
    progress = result["progress_cto"]
    assert item(progress, "tortuosity_moderate_severe")["present"] is None
    assert (progress["min"], progress["max"]) == (0, 1)


@pytest.mark.parametrize(
    ("changes", "proportion"),
    [
        ({}, 0.08),
        ({"prior_cabg": True}, 0.08),
        ({"prior_cabg": True, "age_years": 70}, None),
        ({"prior_cabg": True, "age_years": 70, "stump": "blunt"}, None),
        ({"prior_cabg": True, "age_years": 70, "stump": "blunt", "calcification": "severe"}, 0.35),
    ],
)
def test_castle_publishes_failure_only_at_0_1_and_4_plus(
    changes: dict[str, Any], proportion: float | None
) -> None:
    castle = scores(**changes)["castle"]
    assert castle["bands"] == []
    assert castle["band"] is None
    assert castle["outcome"] == "technical_failure"
    if proportion is None:
        assert castle["estimate"] is None
    else:
        assert castle["estimate"]["proportion"] == pytest.approx(proportion)


def test_castle_estimate_holds_when_the_range_stays_in_one_stratum() -> None:
    assert without("prior_cabg")["castle"]["estimate"]["proportion"] == pytest.approx(0.08)
    assert without("prior_cabg", "age_years", age_years=None)["castle"]["estimate"] is None


@pytest.mark.parametrize(
    ("changes", "band", "proportion"),
    [
        ({}, "easy", 0.88),
        ({"retry_lesion": True}, "intermediate", 0.67),
        ({"retry_lesion": True, "stump": "blunt"}, "difficult", 0.42),
        ({"retry_lesion": True, "stump": "blunt", "calcification": "mild"}, "very_difficult", 0.10),
    ],
)
def test_j_cto_bands_predict_30_minute_crossing(
    changes: dict[str, Any], band: str, proportion: float
) -> None:
    result = scores(**changes)["j_cto"]
    assert result["band"] == band
    assert result["outcome"] == "guidewire_crossing_30min"
    assert result["estimate"]["proportion"] == pytest.approx(proportion)
    assert result["estimate"]["n"] is None


@pytest.mark.parametrize(
    ("changes", "band"),
    [
        ({}, "easy"),
        ({"ostial_location": True}, "intermediate"),
        ({"rentrop_grade": 1}, "difficult"),
        ({"rentrop_grade": 1, "ostial_location": True}, "very_difficult"),
        ({"rentrop_grade": 0, "ostial_location": True, "age_years": 80}, "very_difficult"),
    ],
)
def test_ora_bands(changes: dict[str, Any], band: str) -> None:
    result = scores(**changes)["ora"]
    assert result["band"] == band
    assert result["estimate"] is None


@pytest.mark.parametrize(
    ("changes", "points", "band", "proportion"),
    [
        ({}, 0, "low", 0.004),
        ({"occlusion_length_mm": 23}, 2, "low", 0.004),
        ({"age_years": 66}, 3, "intermediate", 0.018),
        ({"age_years": 66, "retrograde_approach": True}, 4, "intermediate", 0.018),
        ({"age_years": 66, "occlusion_length_mm": 30}, 5, "high", 0.065),
        (
            {"age_years": 66, "occlusion_length_mm": 30, "retrograde_approach": True},
            6,
            "high",
            0.065,
        ),
    ],
)
def test_progress_complications_bands(
    changes: dict[str, Any], points: int, band: str, proportion: float
) -> None:
    result = scores(**changes)["progress_complications"]
    assert (result["points"], result["band"]) == (points, band)
    assert result["outcome"] == "major_complication"
    assert result["estimate"]["proportion"] == pytest.approx(proportion)


def test_unknown_retrograde_approach_gives_a_complications_range() -> None:
    result = without("retrograde_approach", age_years=70, occlusion_length_mm=25)
    comp = result["progress_complications"]
    assert (comp["min"], comp["max"], comp["bands"]) == (5, 6, ["high"])
    result = without("retrograde_approach", age_years=70)["progress_complications"]
    assert result["bands"] == ["intermediate"]
    result = without("retrograde_approach", occlusion_length_mm=25)["progress_complications"]
    assert result["bands"] == ["low", "intermediate"]
    assert result["estimate"] is None


def test_unknown_numeric_input_reaches_both_sides_of_its_threshold() -> None:
    result = without("age_years")
    assert result["progress_complications"]["bands"] == ["low", "intermediate"]
    assert (result["castle"]["min"], result["castle"]["max"]) == (0, 1)
    assert result["ora"]["bands"] == ["easy", "intermediate"]


def test_none_and_absent_are_the_same_unknown() -> None:
    assert score_json({**NOTHING_PRESENT, "rentrop_grade": None}) == score_json(
        {k: v for k, v in NOTHING_PRESENT.items() if k != "rentrop_grade"}
    )


def test_every_score_names_outcome_and_citation() -> None:
    for result in scores().values():
        assert result["outcome"]
        assert result["citation"]
