"""Input dicts shared by the unit tests: a fully known 'nothing present' case to vary one input at a time."""

from __future__ import annotations

from typing import Any, cast

from cds import score_json

# Every canonical input known, and no item of any score present.
NOTHING_PRESENT: dict[str, Any] = {
    "age_years": 50,
    "sex": "female",
    "prior_cabg": False,
    "prior_cabg_target_vessel": False,
    "prior_mi": False,
    "target_vessel": "LAD",
    "stump": "tapered",
    "proximal_cap_ambiguity": False,
    "calcification": "none",
    "bend_gt_45_in_occlusion": False,
    "tortuosity": "none",
    "occlusion_length_mm": 10,
    "distal_vessel_disease": False,
    "rentrop_grade": 3,
    "interventional_collaterals": True,
    "in_stent_occlusion": False,
    "ostial_location": False,
    "retry_lesion": False,
    "retrograde_approach": False,
    "operator_annual_cto_volume": 10,
    "operator_cto_years": 1,
    "operator_last_year_success_rate": 0.5,
}


def scores(**changes: Any) -> dict[str, Any]:
    """The contract output for NOTHING_PRESENT with some inputs changed (None = unknown)."""
    return cast("dict[str, Any]", score_json({**NOTHING_PRESENT, **changes})["scores"])


def without(*names: str, **changes: Any) -> dict[str, Any]:
    """The contract output with these inputs absent (unknown) and others changed."""
    raw = {k: v for k, v in {**NOTHING_PRESENT, **changes}.items() if k not in names}
    return cast("dict[str, Any]", score_json(raw)["scores"])


def item(result: dict[str, Any], item_id: str) -> dict[str, Any]:
    return next(i for i in result["items"] if i["id"] == item_id)
