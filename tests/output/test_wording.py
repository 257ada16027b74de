"""Card and console wording takes a score's numbers from its definition, never restates them."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

import cds.output
from cds.output.cards import INDICATOR, SEVERITY
from cds.output.wording import (
    CAVEAT,
    EXPERT_OPERATOR,
    bands_text,
    ci_text,
    cohort_size,
    group_scale,
    percent,
    result_points_text,
    scenario_criteria,
)
from cds.scoring.model import Item, at_least
from cds.scoring.result import ScoreResult
from cds.scoring.scores.operator_cto import OPERATOR_CTO


def test_group_scales_follow_the_items() -> None:
    assert group_scale(OPERATOR_CTO, "lesion") == "scale 0 to 9"
    assert group_scale(OPERATOR_CTO, "operator") == "scale -4 to 0"
    lesion = [item for item in OPERATOR_CTO.items if item.group == "lesion"][1:]
    fewer = dataclasses.replace(OPERATOR_CTO, items=tuple(lesion), points_range=(0, 8))
    assert group_scale(fewer, "lesion") == "scale 0 to 8"


def test_expert_criteria_are_the_scenarios_items() -> None:
    for item in OPERATOR_CTO.items:
        if item.group == "operator":
            assert item.label.removeprefix("operator's ") in EXPERT_OPERATOR
    stricter = dataclasses.replace(
        OPERATOR_CTO,
        items=tuple(
            Item(i.id, i.points, at_least(i.rule.input, 100), i.group, "volume ≥ 100")
            if i.id == "operator_volume_ge_60"
            else i
            for i in OPERATOR_CTO.items
        ),
    )
    assert "volume ≥ 100" in scenario_criteria(stricter, "expert_operator")
    assert "all three experience criteria" in EXPERT_OPERATOR


def test_cohort_size_is_the_sum_of_the_band_counts() -> None:
    # Xiao 2021 Table 6 / Figure 1(b): 103 + 24 + 13 + 4 lesions.
    assert cohort_size(OPERATOR_CTO) == 144
    assert "(144 lesions" in CAVEAT


def test_no_score_numbers_are_restated_in_output() -> None:
    # Ranges ("0 to 9"), thresholds ("≥ 60") and band limits belong to cds/scoring/scores/.
    restated = re.compile(r"-?\d+ to -?\d+|[≥≤<>] ?\d")
    for path in Path(cds.output.__file__).parent.glob("*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            code = line.split("#")[0]
            if '"""' in code or code.strip().startswith(("'", "e.g.")):
                continue
            strings = re.findall(r'f?"([^"]*)"', code)
            assert not [s for s in strings if restated.search(s)], f"{path.name}: {line.strip()}"


def test_every_band_has_an_indicator_in_severity_order() -> None:
    assert tuple(band.id for band in OPERATOR_CTO.bands) == SEVERITY
    assert list(INDICATOR) == list(SEVERITY)


@pytest.mark.parametrize(
    ("proportion", "text"),
    [
        (0.875, "88%"),  # halves round up: the spec's 87.5 % is 88% everywhere
        (0.125, "13%"),
        (102 / 103, "99%"),
        (0.998, "> 99%"),  # never 100 % for a value below 1
        (0.9949, "99%"),
        (0.004, "< 1%"),  # never 0 % for a value above 0
        (0.0, "0%"),
        (1.0, "100%"),
    ],
)
def test_one_rounding_rule(proportion: float, text: str) -> None:
    assert percent(proportion) == text


def test_confidence_interval_text() -> None:
    assert ci_text((0.2914, 0.7679)) == "95% CI 29–77%"
    assert ci_text((0.947, 0.998)) == "95% CI 95% to > 99%"


def test_range_and_band_words() -> None:
    from tests.output.card_cases import case_of, lesion

    def operator_cto(values: dict[str, object]) -> ScoreResult:
        return case_of(values).report.scores["operator_cto"]

    middle_missing = operator_cto(lesion(4, operator_last_year_success_rate=None))
    assert result_points_text(middle_missing) == "2 or 4"
    assert bands_text(middle_missing) == "easy or difficult"
    everything = operator_cto(dict.fromkeys(lesion(0)))
    assert result_points_text(everything) == "-4 to 9"
    assert bands_text(everything) == "any band"
    two = operator_cto(lesion(2, stump=None))
    assert result_points_text(two) == "2 to 3"  # contiguous: "to"
