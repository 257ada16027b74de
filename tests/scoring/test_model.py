"""Scores are data: definitions are checked when built, and a new score needs no new control flow."""

from __future__ import annotations

from typing import Any, cast

import pytest

from cds import SCORES, ScoringPolicy, definitions, evaluate, parse_inputs, score_json
from cds.scoring.model import (
    Band,
    Item,
    PublishedEstimate,
    Rule,
    ScoreDefinition,
    at_least,
    is_true,
    one_of,
)


def test_a_new_score_is_a_data_addition() -> None:
    toy = ScoreDefinition(
        id="toy",
        name="Toy",
        outcome="technical_success",
        outcome_label="technical success",
        citation="nobody",
        url=None,
        items=(
            Item("long", 2, at_least("occlusion_length_mm", 15), "lesion", "long"),
            Item("mi", 1, is_true("prior_mi"), "patient", "MI"),
        ),
        points_range=(0, 3),
        bands=(Band("low", "low", 1, PublishedEstimate(0.9, 9, 10)), Band("high", "high", None)),
    )
    result = evaluate(toy, parse_inputs({"occlusion_length_mm": 16}))
    assert (result.min, result.max, result.bands) == (2, 3, ["high"])
    assert result.estimate is None
    low = evaluate(toy, parse_inputs({"occlusion_length_mm": 3, "prior_mi": True}))
    assert (low.points, low.band) == (1, "low")
    assert low.estimate is not None
    assert low.estimate.n == 10


@pytest.mark.parametrize(
    "build",
    [
        lambda: Rule("no_such_input", "is_true"),
        lambda: Rule("age_years", "is_true"),
        lambda: one_of("stump", "knife"),
        lambda: Rule("stump", "ge", 3),
        lambda: one_of("calcification", "severe", unknown_when=("unseen",)),
        lambda: PublishedEstimate(0.5, 1, 4),
        lambda: PublishedEstimate(1.5),
    ],
)
def test_malformed_declarations_fail_when_built(build: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each declaration has its own message
        build()  # type: ignore[operator]


def test_declared_range_must_match_the_items() -> None:
    with pytest.raises(ValueError, match="items span"):
        ScoreDefinition(
            id="bad",
            name="Bad",
            outcome="x",
            outcome_label="x",
            citation="x",
            url=None,
            items=(Item("mi", 1, is_true("prior_mi"), "patient", "MI"),),
            points_range=(0, 2),
        )


def test_bands_must_increase_and_end_open() -> None:
    common = {
        "id": "bad",
        "name": "Bad",
        "outcome": "x",
        "outcome_label": "x",
        "citation": "x",
        "url": None,
        "items": (Item("mi", 1, is_true("prior_mi"), "patient", "MI"),),
        "points_range": (0, 1),
    }
    with pytest.raises(ValueError, match="open-ended"):
        ScoreDefinition(**common, bands=(Band("a", "a", 0), Band("b", "b", 1)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="increase"):
        ScoreDefinition(
            **common,  # type: ignore[arg-type]
            bands=(Band("a", "a", 1), Band("b", "b", 0), Band("c", "c", None)),
        )


def test_every_definition_cites_its_source_and_outcome() -> None:
    for definition in SCORES:
        assert definition.citation
        assert definition.outcome
        assert definition.items


def test_cl_score_site_policy_any_prior_cabg() -> None:
    raw = {"prior_cabg": True, "prior_cabg_target_vessel": False}
    default = cast("dict[str, Any]", score_json(raw)["scores"])["cl_score"]
    assert default["items"][0]["present"] is False
    site = cast(
        "dict[str, Any]", score_json(raw, ScoringPolicy(cl_score_any_prior_cabg=True))["scores"]
    )["cl_score"]
    assert site["items"][0]["present"] is True
    assert site["items"][0]["points"] == 1.5
    assert site["items"][0]["input"] == "prior_cabg"
    assert "prior_cabg" not in site["missing"]
    unknown_any = score_json(
        {"prior_cabg_target_vessel": True}, ScoringPolicy(cl_score_any_prior_cabg=True)
    )
    assert cast("dict[str, Any]", unknown_any["scores"])["cl_score"]["missing"][0] == "prior_cabg"


@pytest.mark.parametrize(
    ("vessel", "default", "lm_as_lad"),
    [
        ("LM", True, False),
        ("RAMUS", True, False),
        ("RCA", True, True),
        ("LAD", False, False),
    ],
)
def test_cl_score_site_policy_lm_and_ramus(vessel: str, default: bool, lm_as_lad: bool) -> None:
    def non_lad(policy: ScoringPolicy | None) -> bool:
        scores = cast("dict[str, Any]", score_json({"target_vessel": vessel}, policy)["scores"])
        return bool(next(i["present"] for i in scores["cl_score"]["items"] if i["id"] == "non_lad"))

    assert non_lad(None) is default
    assert non_lad(ScoringPolicy(lm_ramus_as_lad=True)) is lm_as_lad


def test_default_policy_is_the_published_registry() -> None:
    assert definitions() is SCORES
    assert definitions(ScoringPolicy()) is SCORES
