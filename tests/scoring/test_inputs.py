"""Input validation: wrong type, out of range and unknown keys are errors that name input and value."""

from __future__ import annotations

from typing import Any

import pytest

from cds import INPUTS, InputError, parse_inputs, score_json
from cds.scoring.inputs import INPUT_SPECS, InputGroup, inputs_in
from cds.scoring.scores.operator_cto import OPERATOR_CTO
from tests.scoring.cases import NOTHING_PRESENT

# The canonical names, in the order of the table in docs/spec/inputs.md: a public contract.
CONTRACT_NAMES = [
    "age_years",
    "sex",
    "prior_cabg",
    "prior_cabg_target_vessel",
    "prior_mi",
    "target_vessel",
    "stump",
    "proximal_cap_ambiguity",
    "calcification",
    "bend_gt_45_in_occlusion",
    "tortuosity",
    "occlusion_length_mm",
    "distal_vessel_disease",
    "rentrop_grade",
    "interventional_collaterals",
    "in_stent_occlusion",
    "ostial_location",
    "retry_lesion",
    "retrograde_approach",
    "operator_annual_cto_volume",
    "operator_cto_years",
    "operator_last_year_success_rate",
]


def test_input_names_are_the_contract() -> None:
    assert [spec.name for spec in INPUTS] == CONTRACT_NAMES


BAD_VALUES: list[tuple[str, Any, str]] = [
    ("age_years", -1, "out_of_range"),
    ("age_years", 70.0, "wrong_type"),  # never coerced: an integer input takes an integer
    ("age_years", 70.5, "wrong_type"),
    ("age_years", "70", "wrong_type"),
    ("age_years", True, "wrong_type"),
    ("sex", "F", "wrong_type"),
    ("prior_cabg", "true", "wrong_type"),
    ("prior_cabg", 1, "wrong_type"),
    ("prior_cabg", 0, "wrong_type"),
    ("prior_mi", "no", "wrong_type"),
    ("target_vessel", "lad", "wrong_type"),
    ("target_vessel", "LPDA", "wrong_type"),
    ("stump", "Blunt", "wrong_type"),
    ("stump", "", "wrong_type"),
    ("calcification", 2, "wrong_type"),
    ("tortuosity", "unknown", "wrong_type"),
    ("occlusion_length_mm", -3, "out_of_range"),
    ("occlusion_length_mm", "25", "wrong_type"),
    ("occlusion_length_mm", float("nan"), "not_finite"),
    ("occlusion_length_mm", float("inf"), "not_finite"),
    ("occlusion_length_mm", [25], "wrong_type"),
    ("rentrop_grade", 4, "out_of_range"),
    ("rentrop_grade", -1, "out_of_range"),
    ("rentrop_grade", 1.0, "wrong_type"),
    ("operator_annual_cto_volume", -0.5, "out_of_range"),
    ("operator_cto_years", False, "wrong_type"),
    ("operator_last_year_success_rate", 1.01, "out_of_range"),
    ("operator_last_year_success_rate", 90, "out_of_range"),  # a percentage is not a rate
    ("operator_last_year_success_rate", -0.1, "out_of_range"),
    ("retrograde_approach", {"planned": True}, "wrong_type"),
]


@pytest.mark.parametrize(("name", "value", "kind"), BAD_VALUES)
def test_bad_value_is_an_error_naming_input_and_value(name: str, value: Any, kind: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_inputs({**NOTHING_PRESENT, name: value})
    (issue,) = caught.value.issues
    assert issue.loc == ("inputs", name)
    assert issue.type == kind
    assert issue.value is value or issue.value == value
    assert name in str(caught.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("age_years", 0),
        ("occlusion_length_mm", 0),
        ("occlusion_length_mm", 20.5),
        ("rentrop_grade", 0),
        ("rentrop_grade", 3),
        ("operator_last_year_success_rate", 0),
        ("operator_last_year_success_rate", 1),
        ("operator_cto_years", 4),
        ("sex", "other"),
        ("target_vessel", "GRAFT"),
        ("tortuosity", "unseen"),
        ("age_years", 120),
    ],
)
def test_edge_values_are_accepted(name: str, value: Any) -> None:
    assert parse_inputs({name: value})[name] == value


def test_unknown_key_is_an_error() -> None:
    with pytest.raises(InputError) as caught:
        score_json({"occlusion_length": 25})
    (issue,) = caught.value.issues
    assert (issue.loc, issue.value, issue.type) == (
        ("inputs", "occlusion_length"),
        25,
        "unknown_input",
    )


@pytest.mark.parametrize("raw", [[], "stump", 3, None, True])
def test_inputs_must_be_an_object(raw: Any) -> None:
    with pytest.raises(InputError) as caught:
        parse_inputs(raw)
    assert caught.value.issues[0].type == "not_an_object"


def test_every_bad_key_is_reported_at_once() -> None:
    with pytest.raises(InputError) as caught:
        parse_inputs({"age_years": -1, "stump": "Blunt", "foo": 1})
    assert {i.loc[1] for i in caught.value.issues} == {"age_years", "stump", "foo"}
    message = str(caught.value)
    assert '"Blunt"' in message
    assert "-1" in message


def test_null_means_unknown_and_every_name_is_returned() -> None:
    parsed = parse_inputs({"stump": None})
    assert list(parsed) == CONTRACT_NAMES
    assert all(v is None for v in parsed.values())


def test_input_groups_are_declared_on_the_specs() -> None:
    all_groups: tuple[InputGroup, ...] = ("patient", "lesion", "operator")
    groups = [inputs_in(g) for g in all_groups]
    assert sorted(n for g in groups for n in g) == sorted(spec.name for spec in INPUTS)
    assert inputs_in("operator") == (
        "operator_annual_cto_volume",
        "operator_cto_years",
        "operator_last_year_success_rate",
    )
    # Operator-CTO's lesion points and operator adjustment are exactly the two input groups.
    for item in OPERATOR_CTO.items:
        assert INPUT_SPECS[item.rule.input].group == item.group, item.id


@pytest.mark.parametrize(
    ("years", "counted"),
    [(0, 0), (4, 4), (4.5, 4), (4.51, 5), (4.6, 5), (5.2, 5), (0.7, 1)],
)
def test_operator_cto_years_counts_whole_years_rounding_more_than_six_months_up(
    years: float, counted: int
) -> None:
    # docs/spec/inputs.md: whole years, a remainder of more than 6 months rounds up.
    assert parse_inputs({"operator_cto_years": years})["operator_cto_years"] == counted


def test_four_point_six_years_is_five_for_the_operator_cto_item() -> None:
    from cds.scoring.engine import score_all

    result = score_all(parse_inputs({"operator_cto_years": 4.6})).scores["operator_cto"]
    item = next(i for i in result.items if i.id == "operator_years_ge_5")
    assert (item.present, item.value) == (True, 5)
