"""Card and console wording takes a score's numbers from its definition, never restates them."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import cds.output
from cds.output.cards import INDICATOR, SEVERITY
from cds.output.wording import CAVEAT, EXPERT_OPERATOR, cohort_size, group_scale, scenario_criteria
from cds.scoring.model import Item, at_least
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
