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
    kept = (plan.memo, plan.item_results, plan.ranges, plan.subtotals, plan.estimates)
    assert all(0 < len(memo) <= engine._MEMO_LIMIT for memo in kept)
    # A site policy builds a new CL-score definition per call: plans are not kept without bound.
    policy = ScoringPolicy(cl_score_any_prior_cabg=True)
    for _ in range(200):
        for definition in definitions(policy):
            evaluate(definition, {})
    assert len(engine._PLANS) <= 64
