"""Every item of every score, one input at a time, against docs/spec/scores.md."""

from __future__ import annotations

from typing import Any, cast

import pytest

from tests.scoring.cases import item, scores

# (score, item id, points, the input change that makes it present) — the spec's tables.
ITEM_CASES: list[tuple[str, str, float, dict[str, Any]]] = [
    # §1 Operator-CTO (Xiao 2021)
    ("operator_cto", "prior_cabg_target_vessel", 1, {"prior_cabg_target_vessel": True}),
    ("operator_cto", "blunt_stump", 1, {"stump": "blunt"}),
    ("operator_cto", "blunt_stump", 1, {"stump": "no_stump"}),
    ("operator_cto", "calcification", 1, {"calcification": "mild"}),
    ("operator_cto", "calcification", 1, {"calcification": "moderate"}),
    ("operator_cto", "calcification", 1, {"calcification": "severe"}),
    ("operator_cto", "curvature", 1, {"tortuosity": "moderate"}),
    ("operator_cto", "curvature", 1, {"tortuosity": "severe"}),
    ("operator_cto", "occlusion_length_ge_20mm", 1, {"occlusion_length_mm": 20}),
    ("operator_cto", "distal_vessel_disease", 1, {"distal_vessel_disease": True}),
    ("operator_cto", "rentrop_lt_2", 1, {"rentrop_grade": 0}),
    ("operator_cto", "rentrop_lt_2", 1, {"rentrop_grade": 1}),
    ("operator_cto", "in_stent_occlusion", 1, {"in_stent_occlusion": True}),
    ("operator_cto", "ostial_location", 1, {"ostial_location": True}),
    ("operator_cto", "operator_volume_ge_60", -1, {"operator_annual_cto_volume": 60}),
    ("operator_cto", "operator_years_ge_5", -1, {"operator_cto_years": 5}),
    ("operator_cto", "operator_success_ge_90", -2, {"operator_last_year_success_rate": 0.9}),
    # §2 J-CTO
    ("j_cto", "blunt_stump", 1, {"stump": "blunt"}),
    ("j_cto", "blunt_stump", 1, {"stump": "no_stump"}),
    ("j_cto", "calcification", 1, {"calcification": "mild"}),
    ("j_cto", "bending_gt_45", 1, {"bend_gt_45_in_occlusion": True}),
    ("j_cto", "occlusion_length_ge_20mm", 1, {"occlusion_length_mm": 20}),
    ("j_cto", "retry_lesion", 1, {"retry_lesion": True}),
    # §3 PROGRESS-CTO
    ("progress_cto", "proximal_cap_ambiguity", 1, {"proximal_cap_ambiguity": True}),
    ("progress_cto", "tortuosity_moderate_severe", 1, {"tortuosity": "moderate"}),
    ("progress_cto", "tortuosity_moderate_severe", 1, {"tortuosity": "severe"}),
    ("progress_cto", "circumflex_cto", 1, {"target_vessel": "LCX"}),
    ("progress_cto", "no_interventional_collaterals", 1, {"interventional_collaterals": False}),
    # §4 RECHARGE
    ("recharge", "blunt_stump", 1, {"stump": "no_stump"}),
    ("recharge", "calcification", 1, {"calcification": "severe"}),
    ("recharge", "bending_ge_45", 1, {"bend_gt_45_in_occlusion": True}),
    ("recharge", "occlusion_length_gt_20mm", 1, {"occlusion_length_mm": 20.1}),
    ("recharge", "distal_vessel_disease", 1, {"distal_vessel_disease": True}),
    ("recharge", "prior_cabg_target_vessel", 1, {"prior_cabg_target_vessel": True}),
    # §5 CL-score
    ("cl_score", "prior_cabg_target_vessel", 1.5, {"prior_cabg_target_vessel": True}),
    ("cl_score", "prior_mi", 1, {"prior_mi": True}),
    ("cl_score", "blunt_stump", 1, {"stump": "blunt"}),
    ("cl_score", "severe_calcification", 2, {"calcification": "severe"}),
    ("cl_score", "non_lad", 1, {"target_vessel": "RCA"}),
    ("cl_score", "non_lad", 1, {"target_vessel": "LCX"}),
    ("cl_score", "non_lad", 1, {"target_vessel": "LM"}),
    ("cl_score", "non_lad", 1, {"target_vessel": "RAMUS"}),
    ("cl_score", "non_lad", 1, {"target_vessel": "GRAFT"}),
    ("cl_score", "occlusion_length_ge_20mm", 1.5, {"occlusion_length_mm": 20}),
    # §6 ORA
    ("ora", "ostial_location", 1, {"ostial_location": True}),
    ("ora", "rentrop_lt_2", 2, {"rentrop_grade": 1}),
    ("ora", "age_ge_75", 1, {"age_years": 75}),
    # §7 CASTLE
    ("castle", "prior_cabg", 1, {"prior_cabg": True}),
    ("castle", "age_ge_70", 1, {"age_years": 70}),
    ("castle", "stump_blunt_or_invisible", 1, {"stump": "blunt"}),
    ("castle", "stump_blunt_or_invisible", 1, {"stump": "no_stump"}),
    ("castle", "tortuosity_severe_or_unseen", 1, {"tortuosity": "severe"}),
    ("castle", "tortuosity_severe_or_unseen", 1, {"tortuosity": "unseen"}),
    ("castle", "occlusion_length_ge_20mm", 1, {"occlusion_length_mm": 20}),
    ("castle", "severe_calcification", 1, {"calcification": "severe"}),
    # §8 PROGRESS-CTO complications
    ("progress_complications", "age_gt_65", 3, {"age_years": 66}),
    ("progress_complications", "occlusion_length_ge_23mm", 2, {"occlusion_length_mm": 23}),
    ("progress_complications", "retrograde_approach", 1, {"retrograde_approach": True}),
]

# Values of the same inputs that must NOT make the item present.
ABSENT_CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("operator_cto", "blunt_stump", {"stump": "tapered"}),
    ("operator_cto", "calcification", {"calcification": "none"}),
    ("operator_cto", "curvature", {"tortuosity": "mild"}),
    ("operator_cto", "rentrop_lt_2", {"rentrop_grade": 2}),
    ("operator_cto", "occlusion_length_ge_20mm", {"occlusion_length_mm": 19.9}),
    ("j_cto", "calcification", {"calcification": "none"}),
    ("progress_cto", "tortuosity_moderate_severe", {"tortuosity": "mild"}),
    ("progress_cto", "circumflex_cto", {"target_vessel": "RCA"}),
    ("progress_cto", "no_interventional_collaterals", {"interventional_collaterals": True}),
    ("recharge", "occlusion_length_gt_20mm", {"occlusion_length_mm": 20}),
    ("cl_score", "severe_calcification", {"calcification": "moderate"}),
    ("cl_score", "non_lad", {"target_vessel": "LAD"}),
    ("ora", "rentrop_lt_2", {"rentrop_grade": 2}),
    ("ora", "age_ge_75", {"age_years": 74}),
    ("castle", "tortuosity_severe_or_unseen", {"tortuosity": "moderate"}),
    ("castle", "severe_calcification", {"calcification": "moderate"}),
    ("castle", "age_ge_70", {"age_years": 69}),
    ("progress_complications", "age_gt_65", {"age_years": 65}),
    ("progress_complications", "occlusion_length_ge_23mm", {"occlusion_length_mm": 22.9}),
]


@pytest.mark.parametrize(("score_id", "item_id", "points", "change"), ITEM_CASES)
def test_item_adds_its_points(
    score_id: str, item_id: str, points: float, change: dict[str, Any]
) -> None:
    baseline = scores()[score_id]
    changed = scores(**change)[score_id]
    assert baseline["points"] == 0
    assert item(changed, item_id) == {**item(changed, item_id), "points": points, "present": True}
    assert changed["points"] == points
    assert changed["min"] == changed["max"] == points
    assert changed["missing"] == []


@pytest.mark.parametrize(("score_id", "item_id", "change"), ABSENT_CASES)
def test_item_stays_absent(score_id: str, item_id: str, change: dict[str, Any]) -> None:
    changed = scores(**change)[score_id]
    assert item(changed, item_id)["present"] is False
    assert changed["points"] == 0


def test_every_score_lists_every_item_of_the_spec() -> None:
    result = scores()
    declared = {(s, i) for s, i, _, _ in ITEM_CASES}
    listed = {(s, it["id"]) for s, r in result.items() for it in r["items"]}
    assert listed == declared
    assert list(result) == [
        "operator_cto",
        "j_cto",
        "progress_cto",
        "recharge",
        "cl_score",
        "ora",
        "castle",
        "progress_complications",
    ]


@pytest.mark.parametrize(
    ("score_id", "low", "high"),
    [
        ("operator_cto", -4, 9),
        ("j_cto", 0, 5),
        ("progress_cto", 0, 4),
        ("recharge", 0, 6),
        ("cl_score", 0, 8),
        ("ora", 0, 4),
        ("castle", 0, 6),
        ("progress_complications", 0, 6),
    ],
)
def test_all_unknown_spans_the_published_range(score_id: str, low: float, high: float) -> None:
    from cds import score_json

    result = cast("dict[str, Any]", score_json({})["scores"])[score_id]
    assert (result["min"], result["max"]) == (low, high)
    assert result["points"] is None
    assert all(i["present"] is None for i in result["items"])
