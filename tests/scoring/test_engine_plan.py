"""The engine keeps, per definition (`_Plan`), each (input, value) contribution and the immutable
result models it built (items, ranges, subtotals, estimates): results must be what a fresh evaluation
gives, whatever was evaluated before, and the kept state must stay bounded."""

from __future__ import annotations

import random

import pytest

from cds.scoring import engine
from cds.scoring.engine import evaluate
from cds.scoring.inputs import INPUT_SPECS, InputValue
from cds.scoring.scores import SCORES, ScoringPolicy, definitions


def _random_inputs(rng: random.Random) -> dict[str, InputValue | None]:
    out: dict[str, InputValue | None] = {}
    for name, spec in INPUT_SPECS.items():
        if rng.random() < 0.4:
            out[name] = None
        elif spec.kind == "boolean":
            out[name] = rng.random() < 0.5
        elif spec.kind == "enum":
            out[name] = rng.choice(list(spec.values))
        else:
            low = spec.ge if spec.ge is not None else 0
            high = spec.le if spec.le is not None else 400
            value = rng.uniform(low, high)
            out[name] = round(value) if spec.kind == "integer" else value
    return out


def test_kept_contributions_give_what_a_fresh_plan_gives() -> None:
    rng = random.Random(11)
    cases = [_random_inputs(rng) for _ in range(150)]
    warm = [[evaluate(d, case) for d in SCORES] for case in cases]  # memo filled as it goes
    for i, case in enumerate(cases):
        engine._PLANS.clear()  # a fresh plan and memo for this case alone
        assert [evaluate(d, case) for d in SCORES] == warm[i]


def test_memo_and_plan_registry_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "_MEMO_LIMIT", 40)  # reached within a few hundred cases
    rng = random.Random(12)
    engine._PLANS.clear()
    plan = engine._plan(SCORES[0])
    cleared = [0, 0]
    for _ in range(400):  # numeric inputs give new keys, so every memo fills up
        before = len(plan.memo), len(plan.item_results)
        evaluate(SCORES[0], _random_inputs(rng))
        cleared[0] += len(plan.memo) < before[0]
        cleared[1] += len(plan.item_results) < before[1]
    assert min(cleared) > 0, cleared
    kept = (plan.memo, plan.item_results, plan.results, plan.ranges, plan.subtotals, plan.estimates)
    assert all(0 < len(memo) <= engine._MEMO_LIMIT for memo in kept)
    # A site policy builds a new CL-score definition per call: plans are not kept without bound.
    policy = ScoringPolicy(cl_score_any_prior_cabg=True)
    for _ in range(200):
        for definition in definitions(policy):
            evaluate(definition, {})
    assert len(engine._PLANS) <= 64


def _pooled_inputs(rng: random.Random) -> dict[str, InputValue | None]:
    """Inputs drawn from a few values each, so whole cases repeat (as they do in a registry)."""
    pool: dict[str, list[InputValue | None]] = {
        "age_years": [None, 61, 75],
        "prior_cabg": [None, True, False],
        "target_vessel": [None, "RCA", "LAD"],
        "stump": [None, "blunt"],
        "calcification": [None, "severe", "none"],
        "occlusion_length_mm": [None, 12.5, 25, 25.0],
        "operator_annual_cto_volume": [None, 30.0, 120],
        "operator_cto_years": [None, 2, 9],
        "operator_last_year_success_rate": [None, 0.8, 0.95],
    }
    return {name: rng.choice(values) for name, values in pool.items()}


def test_kept_whole_results_are_what_a_fresh_evaluation_gives() -> None:
    rng = random.Random(13)
    cases = [_pooled_inputs(rng) for _ in range(300)]
    engine._PLANS.clear()
    warm = [[evaluate(d, case) for d in SCORES] for case in cases]
    again = [evaluate(d, cases[0]) for d in SCORES]
    assert all(a is b for a, b in zip(again, warm[0], strict=True))  # answered from the plan
    for i, case in enumerate(cases):
        engine._PLANS.clear()
        assert [evaluate(d, case) for d in SCORES] == warm[i]


@pytest.mark.parametrize(("first", "second"), [(25, 25.0), (0.0, -0.0), (-0.0, 0.0)])
def test_values_equal_in_python_but_printed_differently_are_kept_apart(
    first: InputValue, second: InputValue
) -> None:
    engine._PLANS.clear()
    for value in (first, second):
        result = evaluate(SCORES[1], {"occlusion_length_mm": value})  # J-CTO: length ≥ 20 mm
        (item,) = [i for i in result.items if i.input == "occlusion_length_mm"]
        assert repr(item.value) == repr(value)
        assert result.model_dump_json().count(f'"value":{value!r}') == 1
