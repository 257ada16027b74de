"""One evaluator for every declared score: points, the range under unknown inputs, reachable bands.

An unknown input is never counted as absent. The engine enumerates the values an unknown input can
take (all of them for booleans and enums, one value per interval between thresholds for numbers) and
collects every total some completion reaches. Items that share an input are evaluated together, so
the reachable set is exact even when two items read the same input.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import groupby, pairwise

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


def _reachable(items: Iterable[Item], inputs: Inputs) -> set[float]:
    """Every total some completion of the unknown inputs gives these items."""
    totals = {0.0}
    by_input = sorted(items, key=lambda item: item.rule.input)
    for name, group in groupby(by_input, key=lambda item: item.rule.input):
        same_input = list(group)
        value = inputs.get(name)
        if value is None:
            spec = INPUT_SPECS[name]
            thresholds = [
                float(i.rule.operand) for i in same_input if isinstance(i.rule.operand, int | float)
            ]
            values = candidate_values(spec, thresholds)
        else:
            values = [value]
        contributions: set[float] = set()
        for candidate in values:
            partial = {0.0}
            for item in same_input:
                partial = {a + b for a in partial for b in _item_options(item, candidate)}
            contributions |= partial
        totals = {a + b for a in totals for b in contributions}
    return totals


def _num(x: float) -> Points:
    return int(x) if float(x).is_integer() else x


def _range(
    definition: ScoreDefinition,
    items: Iterable[Item],
    inputs: Inputs,
    totals: set[float] | None = None,
) -> Range:
    """`totals`: the reachable totals when the caller has them already (the set is not cheap)."""
    if totals is None:
        totals = _reachable(items, inputs)
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


def _subtotal(items: Iterable[Item], inputs: Inputs) -> Subtotal:
    totals = _reachable(items, inputs)
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


def evaluate(definition: ScoreDefinition, inputs: Inputs) -> ScoreResult:
    """Score validated inputs (`parse_inputs`) with one definition."""
    items = definition.items
    totals = _reachable(items, inputs)
    overall = _range(definition, items, inputs, totals)
    groups = {
        group: _subtotal(list(members), inputs)
        for group, members in groupby(sorted(items, key=lambda i: i.group), key=lambda i: i.group)
    }
    scenarios = {
        s.id: _range(definition, items, {**inputs, **s.inputs}) for s in definition.scenarios
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
        estimate=_estimate(definition, totals),
        items=[
            ItemResult(
                id=i.id,
                points=_num(i.points),
                present=p,
                input=i.rule.input,
                value=inputs.get(i.rule.input),
                group=i.group,
                label=i.label,
            )
            for i, p in zip(items, present, strict=True)
        ],
        missing=[name for name in definition.inputs if inputs.get(name) is None],
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
