"""One evaluator for every declared score: points, the range under unknown inputs, reachable bands.

An unknown input is never counted as absent. The engine enumerates the values an unknown input can
take (all of them for booleans and enums, one value per interval between thresholds for numbers) and
collects every total some completion reaches. Items that share an input are evaluated together, so
the reachable set is exact even when two items read the same input.

What one input's items can add for one value (known, or unknown: every candidate) does not depend on
the case, and a case evaluates the same items several times (total, each group, each scenario): a
definition's `_Plan` groups its items by input once and keeps each (input, value) contribution, so
the enumeration runs once per value seen, not per case (bounded: a few thousand entries). The result
models are immutable and depend only on (item, value) or on the set of reachable totals, so the plan
keeps those too instead of validating the same model again for every case.

A whole `ScoreResult` depends only on the values of the definition's own inputs (scenarios override
fixed values of those same inputs), so the plan also keeps it per tuple of those values: a registry
repeats few combinations per score (the generated 10,000-patient export: 6–11 per score in 3,000
orders), and a repeated one costs one tuple and one dict look-up instead of the evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import groupby, pairwise
from typing import TypeVar

from cds.scoring.estimate import wilson_interval
from cds.scoring.inputs import INPUT_SPECS, Inputs, InputSpec, InputValue, parse_inputs
from cds.scoring.model import Item, ScoreDefinition
from cds.scoring.result import (
    EstimateResult,
    ItemResult,
    Points,
    Range,
    ScoreReport,
    ScoreResult,
    Subtotal,
)
from cds.scoring.scores import ScoringPolicy, definitions


def candidate_values(spec: InputSpec, thresholds: Iterable[float]) -> list[InputValue]:
    """Values of an unknown input that together reach every outcome of rules thresholded at these."""
    if spec.kind == "boolean":
        return [True, False]
    if spec.kind == "enum":
        return list(spec.values)
    low = spec.ge if spec.ge is not None else min([0.0, *thresholds]) - 1
    high = spec.le
    cuts = sorted({t for t in thresholds if low <= t and (high is None or t <= high)})
    top = high if high is not None else (cuts[-1] if cuts else low) + 1
    points = sorted({low, *cuts, top})
    if spec.kind == "integer":
        # Between two integer cuts the integers next to each cut decide every comparison.
        ints = {int(low), int(top)} | {c + d for c in map(int, cuts) for d in (-1, 0, 1)}
        return sorted(v for v in ints if low <= v <= top)
    mids = [(a + b) / 2 for a, b in pairwise(points)]
    return sorted({*points, *mids})


def _item_options(item: Item, value: InputValue) -> set[float]:
    present = item.rule.test(value)
    return {0.0, item.points} if present is None else {item.points if present else 0.0}


@dataclass(frozen=True)
class _InputItems:
    """The items of a definition (or of one of its groups) that read one input, in item order."""

    key: int
    """Unique within the plan: the memo key of this entry's contributions."""
    name: str
    items: tuple[Item, ...]


ValueKey = tuple[object, ...]
"""A value as a memo key: its type (True == 1 == 1.0, but each reads and prints differently) and,
for a float zero, its sign (-0.0 == 0.0, but "-0.0" is printed)."""


def _value_key(value: InputValue | None) -> ValueKey:
    if type(value) is float and value == 0:
        return (float, value, str(value))
    return (type(value), value)


@dataclass(frozen=True)
class _Plan:
    definition: ScoreDefinition
    by_input: tuple[_InputItems, ...]
    groups: tuple[tuple[str, tuple[_InputItems, ...]], ...]
    inputs: tuple[str, ...]
    """`definition.inputs`, computed once (a property that walks the items)."""
    results: dict[tuple[ValueKey, ...], ScoreResult] = field(default_factory=dict, compare=False)
    memo: dict[tuple[int, type, InputValue | None], frozenset[float]] = field(
        default_factory=dict, compare=False
    )
    item_results: dict[tuple[int, bool | None, ValueKey], ItemResult] = field(
        default_factory=dict, compare=False
    )
    ranges: dict[frozenset[float], Range] = field(default_factory=dict, compare=False)
    subtotals: dict[frozenset[float], Subtotal] = field(default_factory=dict, compare=False)
    estimates: dict[frozenset[float], EstimateResult | None] = field(
        default_factory=dict, compare=False
    )


_MEMO_LIMIT = 4096
K = TypeVar("K")
V = TypeVar("V")


def _kept(memo: dict[K, V], key: K, build: Callable[[], V]) -> V:
    """`memo[key]`, built on first use; the memo is emptied when it reaches its bound."""
    try:
        return memo[key]
    except KeyError:
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        value = memo[key] = build()
        return value


_PLANS: dict[int, _Plan] = {}
"""id(definition) → its plan; the plan holds the definition, so the id cannot be reused meanwhile."""


def _plan(definition: ScoreDefinition) -> _Plan:
    plan = _PLANS.get(id(definition))
    if plan is not None and plan.definition is definition:
        return plan
    counter = iter(range(1 << 30))

    def by_input(items: Iterable[Item]) -> tuple[_InputItems, ...]:
        ordered = sorted(items, key=lambda item: item.rule.input)  # stable: item order kept
        return tuple(
            _InputItems(next(counter), name, tuple(group))
            for name, group in groupby(ordered, key=lambda item: item.rule.input)
        )

    groups = tuple(
        (group, by_input(members))
        for group, members in groupby(
            sorted(definition.items, key=lambda i: i.group), key=lambda i: i.group
        )
    )
    plan = _Plan(definition, by_input(definition.items), groups, definition.inputs)
    if len(_PLANS) >= 64:  # site policies build definitions per call: keep the registry bounded
        _PLANS.clear()
    _PLANS[id(definition)] = plan
    return plan


def _contributions(entry: _InputItems, value: InputValue | None) -> frozenset[float]:
    """Every sum these items (one input) give for this value, or for any value when unknown."""
    if value is None:
        spec = INPUT_SPECS[entry.name]
        thresholds = [
            float(i.rule.operand) for i in entry.items if isinstance(i.rule.operand, int | float)
        ]
        values = candidate_values(spec, thresholds)
    else:
        values = [value]
    contributions: set[float] = set()
    for candidate in values:
        partial = {0.0}
        for item in entry.items:
            partial = {a + b for a in partial for b in _item_options(item, candidate)}
        contributions |= partial
    return frozenset(contributions)


def _reachable(plan: _Plan, entries: Iterable[_InputItems], inputs: Inputs) -> set[float]:
    """Every total some completion of the unknown inputs gives these items."""
    totals = {0.0}
    memo = plan.memo
    for entry in entries:
        value = inputs.get(entry.name)
        key = (entry.key, type(value), value)
        contributions = memo.get(key)
        if contributions is None:
            if len(memo) >= _MEMO_LIMIT:
                memo.clear()
            contributions = memo[key] = _contributions(entry, value)
        if len(contributions) == 1:  # a known value: no set product (adding 0.0 changes nothing)
            (only,) = contributions
            if only:
                totals = {a + only for a in totals}
        else:
            totals = {a + b for a in totals for b in contributions}
    return totals


def _num(x: float) -> Points:
    return int(x) if float(x).is_integer() else x


def _range(plan: _Plan, totals: set[float]) -> Range:
    return _kept(plan.ranges, frozenset(totals), lambda: _new_range(plan.definition, totals))


def _new_range(definition: ScoreDefinition, totals: set[float]) -> Range:
    """The range and bands of these reachable totals."""
    bands = (
        []
        if not definition.bands
        else list(dict.fromkeys(definition.band_of(t).id for t in sorted(totals)))
    )
    return Range(
        points=_num(next(iter(totals))) if len(totals) == 1 else None,
        min=_num(min(totals)),
        max=_num(max(totals)),
        band=bands[0] if len(bands) == 1 else None,
        bands=bands,
    )


def _subtotal(plan: _Plan, entries: Iterable[_InputItems], inputs: Inputs) -> Subtotal:
    totals = _reachable(plan, entries, inputs)
    return _kept(plan.subtotals, frozenset(totals), lambda: _new_subtotal(totals))


def _new_subtotal(totals: set[float]) -> Subtotal:
    return Subtotal(
        points=_num(next(iter(totals))) if len(totals) == 1 else None,
        min=_num(min(totals)),
        max=_num(max(totals)),
    )


def _present(item: Item, inputs: Inputs) -> bool | None:
    value = inputs.get(item.rule.input)
    return None if value is None else item.rule.test(value)


def _estimate(definition: ScoreDefinition, totals: set[float]) -> EstimateResult | None:
    """The published estimate of the one band or stratum holding every reachable total, if any."""
    published = next(
        (
            band.estimate
            for band in definition.bands
            if all(definition.band_of(t) is band for t in totals)
        ),
        None,
    ) or next((s.estimate for s in definition.strata if all(s.contains(t) for t in totals)), None)
    if published is None:
        return None
    ci = None
    if published.successes is not None and published.n is not None:
        ci = wilson_interval(published.successes, published.n)
    return EstimateResult(
        proportion=published.proportion,
        successes=published.successes,
        n=published.n,
        ci95=ci,
        outcome=definition.outcome,
        note=published.note,
    )


def _item_result(
    plan: _Plan, index: int, item: Item, present: bool | None, value: InputValue | None
) -> ItemResult:
    return _kept(
        plan.item_results,
        (index, present, _value_key(value)),
        lambda: ItemResult(
            id=item.id,
            points=_num(item.points),
            present=present,
            input=item.rule.input,
            value=value,
            group=item.group,
            label=item.label,
        ),
    )


def evaluate(definition: ScoreDefinition, inputs: Inputs) -> ScoreResult:
    """Score validated inputs (`parse_inputs`) with one definition."""
    plan = _plan(definition)
    key = tuple([_value_key(inputs.get(name)) for name in plan.inputs])
    return _kept(plan.results, key, lambda: _evaluate(plan, inputs))


def _evaluate(plan: _Plan, inputs: Inputs) -> ScoreResult:
    definition = plan.definition
    items = definition.items
    totals = _reachable(plan, plan.by_input, inputs)
    overall = _range(plan, totals)
    groups = {group: _subtotal(plan, entries, inputs) for group, entries in plan.groups}
    scenarios = {
        s.id: _range(plan, _reachable(plan, plan.by_input, {**inputs, **s.inputs}))
        for s in definition.scenarios
    }
    # Points are known only when no item is open: a point total can be unique by coincidence
    # (e.g. an unknown worth 0 either way), but then the inputs are still missing.
    present = [_present(i, inputs) for i in items]
    return ScoreResult(
        name=definition.name,
        points=overall.points if None not in present else None,
        min=overall.min,
        max=overall.max,
        band=overall.band,
        bands=overall.bands,
        outcome=definition.outcome,
        outcome_label=definition.outcome_label,
        estimate=_kept(plan.estimates, frozenset(totals), lambda: _estimate(definition, totals)),
        items=[
            _item_result(plan, index, item, p, inputs.get(item.rule.input))
            for index, (item, p) in enumerate(zip(items, present, strict=True))
        ],
        missing=[name for name in plan.inputs if inputs.get(name) is None],
        groups=groups,
        scenarios=scenarios,
        citation=definition.citation,
        url=definition.url,
    )


def score_all(inputs: Inputs, policy: ScoringPolicy | None = None) -> ScoreReport:
    """Every declared score for validated inputs."""
    return ScoreReport(scores={d.id: evaluate(d, inputs) for d in definitions(policy)})


def score_json(raw: Mapping[str, object], policy: ScoringPolicy | None = None) -> dict[str, object]:
    """Validate raw inputs and return exactly what `cto-cds score --json` prints.

    Raises:
        InputError: an input has a wrong type or value, or a key is not a canonical input.
    """
    return score_all(parse_inputs(raw), policy).model_dump(mode="json")
