"""The score engine (``cds.score_json``) against the independent oracle in ``oracle.py``.

Property tests draw random valid canonical inputs (each input absent, ``None``, or a valid value,
with extra weight on values at and around every threshold of ``scores.md``) and require the
engine to agree with the brute-force oracle on every contract field. Hand-computed cases pin the
oracle itself to the spec, with the arithmetic in comments.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds import score_json

# tests/unit is on sys.path under pytest's default ("prepend") import mode.
from tests.scoring.oracle import SCORE_IDS, oracle

# ---------------------------------------------------------------------------------------------
# Input generation
# ---------------------------------------------------------------------------------------------

_BOOL = st.booleans()


def _number(
    edges: list[float], lo: float, hi: float, *, integers: bool = True
) -> st.SearchStrategy[Any]:
    """Threshold values (as int and float where both spellings are valid) or any number."""
    parts: list[st.SearchStrategy[Any]] = [
        st.sampled_from(edges),
        st.floats(min_value=lo, max_value=hi, allow_nan=False, allow_infinity=False),
    ]
    if integers:
        parts.append(st.integers(min_value=int(lo), max_value=int(hi)))
    return st.one_of(*parts)


VALUES: dict[str, st.SearchStrategy[Any]] = {
    "age_years": st.one_of(
        st.sampled_from([0, 64, 65, 66, 69, 70, 71, 74, 75, 76, 90]),
        st.integers(min_value=0, max_value=120),
    ),
    "sex": st.sampled_from(["female", "male", "other"]),
    "prior_cabg": _BOOL,
    "prior_cabg_target_vessel": _BOOL,
    "prior_mi": _BOOL,
    "target_vessel": st.sampled_from(["LM", "LAD", "LCX", "RCA", "RAMUS", "GRAFT"]),
    "stump": st.sampled_from(["tapered", "blunt", "no_stump"]),
    "proximal_cap_ambiguity": _BOOL,
    "calcification": st.sampled_from(["none", "mild", "moderate", "severe"]),
    "bend_gt_45_in_occlusion": _BOOL,
    "tortuosity": st.sampled_from(["none", "mild", "moderate", "severe", "unseen"]),
    "occlusion_length_mm": _number(
        [
            0,
            0.0,
            19.9,
            19.999999,
            20,
            20.0,
            20.000001,
            20.1,
            22.9,
            22.999999,
            23,
            23.0,
            23.000001,
            40,
        ],
        0,
        300,
    ),
    "distal_vessel_disease": _BOOL,
    "rentrop_grade": st.integers(min_value=0, max_value=3),
    "interventional_collaterals": _BOOL,
    "in_stent_occlusion": _BOOL,
    "ostial_location": _BOOL,
    "retry_lesion": _BOOL,
    "retrograde_approach": _BOOL,
    "operator_annual_cto_volume": _number(
        [0, 59, 59.9, 59.999999, 60, 60.0, 60.000001, 100], 0, 1000
    ),
    "operator_cto_years": _number([0, 4, 4.0, 4.5, 4.999999, 5, 5.0, 5.000001, 10], 0, 60),
    "operator_last_year_success_rate": _number(
        [0, 0.0, 0.5, 0.89, 0.899, 0.899999, 0.9, 0.900001, 1, 1.0], 0, 1
    ),
}

_ABSENT = object()


@st.composite
def canonical_inputs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid input dict; unknown inputs are either left out or given as ``None``."""
    mode = draw(st.sampled_from(["all_known", "few_unknown", "mixed", "mostly_unknown"]))
    names = list(VALUES)
    if mode == "all_known":
        unknown: set[str] = set()
    elif mode == "few_unknown":
        unknown = set(draw(st.lists(st.sampled_from(names), max_size=3, unique=True)))
    elif mode == "mixed":
        unknown = {n for n in names if draw(st.booleans())}
    else:
        unknown = set(names) - set(draw(st.lists(st.sampled_from(names), max_size=3)))

    out: dict[str, Any] = {}
    for name in names:
        if name in unknown:
            if draw(st.booleans()):
                out[name] = None  # explicit null; otherwise the key is left out
        else:
            out[name] = draw(VALUES[name])
    return out


# ---------------------------------------------------------------------------------------------
# Comparison
# ---------------------------------------------------------------------------------------------

_PLAIN_FIELDS = ("points", "min", "max", "band", "bands", "missing")


def _compare_estimate(score_id: str, got: Any, want: dict[str, Any] | None) -> None:
    if want is None:
        assert got is None, f"{score_id}: estimate should be null, engine gave {got!r}"
        return
    assert isinstance(got, dict), f"{score_id}: estimate {got!r}, expected {want!r}"
    assert got.get("proportion") == pytest.approx(want["proportion"], abs=1e-9), score_id
    assert got.get("successes") == want["successes"], score_id
    assert got.get("n") == want["n"], score_id
    if want["ci95"] is None:
        assert got.get("ci95") is None, score_id
    else:
        assert list(got.get("ci95") or []) == pytest.approx(want["ci95"], abs=1e-9), score_id


def _compare_score(score_id: str, got: dict[str, Any], want: dict[str, Any]) -> None:
    for field in _PLAIN_FIELDS:
        assert field in got, f"{score_id}: engine output has no {field!r}"
        assert got[field] == want[field], (
            f"{score_id}.{field}: engine {got[field]!r} != oracle {want[field]!r}"
        )
    _compare_estimate(score_id, got.get("estimate"), want["estimate"])

    # Same items, in the order of the scores.md table, with the same weights and present flags.
    got_items = [(it["id"], it["points"], it["present"]) for it in got["items"]]
    want_items = [(it["id"], it["points"], it["present"]) for it in want["items"]]
    assert got_items == want_items, f"{score_id}.items: engine {got_items} != oracle {want_items}"


def _engine(inputs: dict[str, Any]) -> dict[str, Any]:
    """The engine's ``scores`` object (``score_json`` is typed ``dict[str, object]``)."""
    scores: Any = score_json(dict(inputs))["scores"]
    return dict(scores)


def _compare_all(inputs: dict[str, Any]) -> None:
    got = _engine(inputs)
    want = oracle(inputs)
    assert set(SCORE_IDS) <= set(got), f"engine scores {sorted(got)}"
    for score_id in SCORE_IDS:
        _compare_score(score_id, got[score_id], want[score_id])


# ---------------------------------------------------------------------------------------------
# Property test
# ---------------------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(canonical_inputs())
def test_engine_matches_oracle(inputs: dict[str, Any]) -> None:
    _compare_all(inputs)


@settings(max_examples=150, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            name: st.one_of(st.none(), VALUES[name])
            for name in (
                "age_years",
                "occlusion_length_mm",
                "rentrop_grade",
                "operator_annual_cto_volume",
                "operator_cto_years",
                "operator_last_year_success_rate",
                "tortuosity",
            )
        },
    )
)
def test_engine_matches_oracle_thresholds_only(inputs: dict[str, Any]) -> None:
    """Only the threshold inputs vary (everything else unknown): stresses range arithmetic."""
    _compare_all(inputs)


# ---------------------------------------------------------------------------------------------
# Hand-computed cases (they check the oracle against the spec, then the engine)
# ---------------------------------------------------------------------------------------------

# Every input known. Item by item:
FULL_CASE: dict[str, Any] = {
    "age_years": 72,
    "sex": "male",
    "prior_cabg": True,
    "prior_cabg_target_vessel": False,
    "prior_mi": True,
    "target_vessel": "RCA",
    "stump": "blunt",
    "proximal_cap_ambiguity": False,
    "calcification": "severe",
    "bend_gt_45_in_occlusion": True,
    "tortuosity": "moderate",
    "occlusion_length_mm": 20,
    "distal_vessel_disease": False,
    "rentrop_grade": 1,
    "interventional_collaterals": True,
    "in_stent_occlusion": False,
    "ostial_location": False,
    "retry_lesion": False,
    "retrograde_approach": False,
    "operator_annual_cto_volume": 60,
    "operator_cto_years": 4,
    "operator_last_year_success_rate": 0.9,
}
FULL_EXPECTED: dict[str, dict[str, Any]] = {
    # lesion: cabg_tv 0 + blunt 1 + calc 1 + curvature(moderate) 1 + length 20>=20 1 + distal 0
    #         + rentrop 1<2 1 + in-stent 0 + ostial 0 = 5
    # operator: volume 60>=60 -1, years 4<5 0, success 0.9>=0.9 -2  -> 5 - 3 = 2 -> easy
    "operator_cto": {"points": 2, "band": "easy", "p": 102 / 103},
    # blunt 1 + calc 1 + bend 1 + length 1 + retry 0 = 4 -> very_difficult (>= 3)
    "j_cto": {"points": 4, "band": "very_difficult", "p": 0.10},
    # ambiguity 0 + tortuosity moderate 1 + LCX 0 (RCA) + no collaterals 0 (they exist) = 1
    "progress_cto": {"points": 1, "band": None, "p": None},
    # blunt 1 + calc 1 + bend 1 + length 20>20 0 + distal 0 + cabg_tv 0 = 3
    "recharge": {"points": 3, "band": None, "p": None},
    # cabg_tv 0 + prior_mi 1 + blunt 1 + severe calc 2 + non-LAD (RCA) 1 + length 1.5 = 6.5
    "cl_score": {"points": 6.5, "band": None, "p": None},
    # ostial 0 + rentrop<2 2 + age 72>=75 0 = 2 -> difficult (no published rate)
    "ora": {"points": 2, "band": "difficult", "p": None},
    # cabg 1 + age 72>=70 1 + blunt 1 + tortuosity severe/unseen 0 + length 1 + severe calc 1
    # = 5 -> >= 4 -> 35 % technical failure
    "castle": {"points": 5, "band": None, "p": 0.35},
    # age 72>65 3 + length 20>=23 0 + retrograde 0 = 3 -> intermediate (1.8 %)
    "progress_complications": {"points": 3, "band": "intermediate", "p": 0.018},
}


@pytest.mark.parametrize("score_id", SCORE_IDS)
def test_full_case_by_hand(score_id: str) -> None:
    expected = FULL_EXPECTED[score_id]
    for result in (oracle(FULL_CASE)[score_id], _engine(FULL_CASE)[score_id]):
        assert result["points"] == expected["points"]
        assert result["min"] == result["max"] == expected["points"]
        assert result["band"] == expected["band"]
        assert result["bands"] == ([expected["band"]] if expected["band"] else [])
        assert result["missing"] == []
        assert all(it["present"] is not None for it in result["items"])
        if expected["p"] is None:
            assert result["estimate"] is None
        else:
            assert result["estimate"]["proportion"] == pytest.approx(expected["p"], abs=1e-9)


def test_operator_cto_easy_wilson_by_hand() -> None:
    # 102/103 = 0.99029; Wilson with z = 1.96: centre (p + z²/2n)/(1 + z²/n),
    # half-width z·sqrt(p(1-p)/n + z²/4n²)/(1 + z²/n) -> [0.94704, 0.99828]
    for result in (oracle(FULL_CASE), _engine(FULL_CASE)):
        est = result["operator_cto"]["estimate"]
        assert est["successes"] == 102
        assert est["n"] == 103
        assert est["ci95"] == pytest.approx([0.947042, 0.998284], abs=1e-6)


def test_unseen_tortuosity_by_hand() -> None:
    # Same as FULL_CASE but tortuosity unseen: Operator-CTO `curvature` is indeterminate although
    # the input is known -> points null, range 1..2 (2 - 1 curvature, 2 with it), both inside
    # `easy` -> band easy with the easy estimate; missing stays empty.
    # PROGRESS-CTO: 0 + (0 or 1) + 0 + 0 -> 0..1. CASTLE: unseen counts +1 -> 5 + 1 = 6.
    case = {**FULL_CASE, "tortuosity": "unseen"}
    for result in (oracle(case), _engine(case)):
        op = result["operator_cto"]
        assert (op["points"], op["min"], op["max"]) == (None, 1, 2)
        assert (op["band"], op["bands"], op["missing"]) == ("easy", ["easy"], [])
        assert op["estimate"]["proportion"] == pytest.approx(102 / 103, abs=1e-9)
        curvature = next(it for it in op["items"] if it["id"] == "curvature")
        assert curvature["present"] is None
        pc = result["progress_cto"]
        assert (pc["points"], pc["min"], pc["max"], pc["missing"]) == (None, 0, 1, [])
        castle = result["castle"]
        assert (castle["points"], castle["min"], castle["max"]) == (6, 6, 6)


def test_operator_band_split_by_unknown_operator_by_hand() -> None:
    # Lesion part of FULL_CASE is 5; with an unknown operator the adjustment is 0..-4:
    # range 1..5 -> bands easy (1, 2), moderate (3), difficult (4), extremely_difficult (5).
    # A known expert (volume 100, years 10, success 1.0) gives 5 - 4 = 1 -> easy.
    unknown_op = {k: v for k, v in FULL_CASE.items() if not k.startswith("operator_")}
    for result in (oracle(unknown_op), _engine(unknown_op)):
        op = result["operator_cto"]
        assert (op["points"], op["min"], op["max"]) == (None, 1, 5)
        assert op["bands"] == ["easy", "moderate", "difficult", "extremely_difficult"]
        assert op["band"] is None
        assert op["estimate"] is None
        assert op["missing"] == [
            "operator_annual_cto_volume",
            "operator_cto_years",
            "operator_last_year_success_rate",
        ]
    expert = {
        **unknown_op,
        "operator_annual_cto_volume": 100,
        "operator_cto_years": 10,
        "operator_last_year_success_rate": 1.0,
    }
    for result in (oracle(expert), _engine(expert)):
        assert result["operator_cto"]["points"] == 1
        assert result["operator_cto"]["band"] == "easy"


def test_j_cto_contract_example_by_hand() -> None:
    # inputs.md example: blunt 1 + mild calc 1 + no bend 0 + 10 mm 0 = 2, retry unknown -> 2..3,
    # bands difficult (2) and very_difficult (3); no estimate because two bands are reachable.
    case = {
        "stump": "no_stump",
        "calcification": "mild",
        "bend_gt_45_in_occlusion": False,
        "occlusion_length_mm": 10,
        "retry_lesion": None,
    }
    for result in (oracle(case), _engine(case)):
        j = result["j_cto"]
        assert (j["points"], j["min"], j["max"], j["band"]) == (None, 2, 3, None)
        assert j["bands"] == ["difficult", "very_difficult"]
        assert j["missing"] == ["retry_lesion"]
        assert j["estimate"] is None


def test_castle_low_stratum_with_unknown_by_hand() -> None:
    # CASTLE: cabg unknown (0 or 1), age 69 (<70) 0, tapered 0, tortuosity mild 0, 19.9 mm 0,
    # moderate calc 0 -> 0..1, every completion in the 0-1 stratum -> 8 % failure.
    # Adding 20 mm (+1) gives 1..2: the 2-point completion has no published number -> null.
    case: dict[str, Any] = {
        "age_years": 69,
        "stump": "tapered",
        "tortuosity": "mild",
        "occlusion_length_mm": 19.9,
        "calcification": "moderate",
    }
    longer = {**case, "occlusion_length_mm": 20.0}
    for low, mid in (
        (oracle(case), oracle(longer)),
        (_engine(case), _engine(longer)),
    ):
        assert (low["castle"]["min"], low["castle"]["max"]) == (0, 1)
        assert low["castle"]["estimate"]["proportion"] == pytest.approx(0.08, abs=1e-9)
        assert low["castle"]["bands"] == []
        assert low["castle"]["band"] is None
        assert low["castle"]["missing"] == ["prior_cabg"]
        assert (mid["castle"]["min"], mid["castle"]["max"]) == (1, 2)
        assert mid["castle"]["estimate"] is None


def test_age_and_length_edges_by_hand() -> None:
    # PROGRESS complications: age 65 is not > 65 (0), 23 mm >= 23 (+2), retrograde unknown
    # -> 2..3 -> low and intermediate. Age 66: 3 + 2 = 5..6 -> high only (6.5 %).
    # ORA: age 75 >= 75 (+1), Rentrop 2 (0), ostial unknown -> 1..2.
    # CL-score: LM counts as non-LAD (+1), prior_cabg_target_vessel unknown (0 or 1.5),
    # 23 mm (+1.5), the rest unknown -> min 1 + 1.5 = 2.5, max 2.5 + 1.5 + 1 + 1 + 2 = 8.
    case: dict[str, Any] = {
        "age_years": 65,
        "occlusion_length_mm": 23,
        "rentrop_grade": 2,
        "target_vessel": "LM",
    }
    for result in (oracle(case), _engine(case)):
        pc = result["progress_complications"]
        assert (pc["min"], pc["max"], pc["bands"]) == (2, 3, ["low", "intermediate"])
        assert pc["missing"] == ["retrograde_approach"]
        cl = result["cl_score"]
        assert (cl["min"], cl["max"]) == (2.5, 8)
        assert cl["missing"] == ["prior_cabg_target_vessel", "prior_mi", "stump", "calcification"]
    older = {**case, "age_years": 66, "ostial_location": False}
    for result in (oracle(older), _engine(older)):
        pc = result["progress_complications"]
        assert (pc["min"], pc["max"], pc["band"]) == (5, 6, "high")
        assert pc["estimate"]["proportion"] == pytest.approx(0.065, abs=1e-9)
        ora = result["ora"]
        # age 66 < 75, Rentrop 2, not ostial -> 0 -> easy
        assert (ora["points"], ora["band"]) == (0, "easy")
