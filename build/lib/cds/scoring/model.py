"""How a published score is declared: items with rules over canonical inputs, bands, estimates.

A score is data (see `cds/scoring/scores/`); one engine (`engine.py`) evaluates any of them. A
definition is checked when it is built, so a typo in a score module fails at import, not per request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from cds.scoring.inputs import INPUT_SPECS, InputValue

Op = Literal["is_true", "is_false", "in", "ge", "gt", "lt", "le"]
ItemGroup = Literal["patient", "lesion", "operator", "procedure"]


@dataclass(frozen=True)
class Rule:
    """When an item is present, as a test on one canonical input.

    `unknown_when` lists values for which the item cannot be decided even though the input is known
    (tortuosity "unseen" leaves Operator-CTO curvature undetermined).
    """

    input: str
    op: Op
    operand: float | frozenset[str] | None = None
    unknown_when: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        spec = INPUT_SPECS.get(self.input)
        if spec is None:
            raise ValueError(f"rule on unknown input {self.input!r}")
        if self.op in ("is_true", "is_false") and spec.kind != "boolean":
            raise ValueError(f"{self.op} on non-boolean input {self.input!r}")
        if self.op == "in":
            if spec.kind != "enum" or not isinstance(self.operand, frozenset):
                raise ValueError(f"'in' needs an enum input and a set of values: {self.input!r}")
            if not self.operand <= set(spec.values):
                raise ValueError(
                    f"values {sorted(self.operand - set(spec.values))} not in {spec.name}"
                )
        if self.op in ("ge", "gt", "lt", "le") and (
            spec.kind not in ("integer", "number") or not isinstance(self.operand, int | float)
        ):
            raise ValueError(f"{self.op} needs a numeric input and threshold: {self.input!r}")
        if not self.unknown_when <= set(spec.values):
            raise ValueError(f"unknown_when values not in {spec.name}")

    def test(self, value: InputValue) -> bool | None:
        """The item's presence for a known input value; None when this value cannot decide it."""
        if isinstance(value, str) and value in self.unknown_when:
            return None
        match self.op:
            case "is_true":
                return value is True
            case "is_false":
                return value is False
            case "in":
                assert isinstance(self.operand, frozenset)
                return value in self.operand
        assert isinstance(value, int | float)
        assert isinstance(self.operand, int | float)
        match self.op:
            case "ge":
                return value >= self.operand
            case "gt":
                return value > self.operand
            case "lt":
                return value < self.operand
            case _:
                return value <= self.operand


def is_true(name: str) -> Rule:
    return Rule(name, "is_true")


def is_false(name: str) -> Rule:
    return Rule(name, "is_false")


def one_of(name: str, *values: str, unknown_when: tuple[str, ...] = ()) -> Rule:
    return Rule(name, "in", frozenset(values), frozenset(unknown_when))


def at_least(name: str, threshold: float) -> Rule:
    return Rule(name, "ge", threshold)


def more_than(name: str, threshold: float) -> Rule:
    return Rule(name, "gt", threshold)


def less_than(name: str, threshold: float) -> Rule:
    return Rule(name, "lt", threshold)


@dataclass(frozen=True)
class Item:
    """One scored finding: its id (the contract's), points, rule and the part of the case it concerns."""

    id: str
    points: float
    rule: Rule
    group: ItemGroup
    label: str


@dataclass(frozen=True)
class PublishedEstimate:
    """An outcome rate published for a band or stratum, with its count where the source gives one."""

    proportion: float
    successes: int | None = None
    n: int | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if not 0 <= self.proportion <= 1:
            raise ValueError(f"proportion {self.proportion} outside 0..1")
        if (self.successes is None) != (self.n is None):
            raise ValueError("successes and n go together")
        if self.n is not None and self.successes is not None:
            if not 0 <= self.successes <= self.n:
                raise ValueError(f"successes {self.successes} outside 0..{self.n}")
            if abs(self.successes / self.n - self.proportion) > 1e-9:
                raise ValueError("proportion must equal successes / n")


@dataclass(frozen=True)
class Band:
    """A named band: totals up to `upper` inclusive (None = no upper limit), above the previous band."""

    id: str
    label: str
    upper: float | None
    estimate: PublishedEstimate | None = None


@dataclass(frozen=True)
class Stratum:
    """A range of totals with a published estimate, for scores whose estimates are not per band."""

    lower: float | None
    upper: float | None
    estimate: PublishedEstimate

    def contains(self, total: float) -> bool:
        return (self.lower is None or total >= self.lower) and (
            self.upper is None or total <= self.upper
        )


@dataclass(frozen=True)
class Scenario:
    """A what-if evaluated beside the score, e.g. the same lesion with an expert operator."""

    id: str
    label: str
    inputs: Mapping[str, InputValue]


@dataclass(frozen=True)
class ScoreDefinition:
    """A published score: everything the engine and the card need, and nothing computed."""

    id: str
    name: str
    outcome: str
    outcome_label: str
    citation: str
    url: str | None
    items: tuple[Item, ...]
    points_range: tuple[float, float]
    bands: tuple[Band, ...] = ()
    strata: tuple[Stratum, ...] = ()
    scenarios: tuple[Scenario, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        ids = [item.id for item in self.items]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{self.id}: duplicate item ids")
        low = sum(min(item.points, 0) for item in self.items)
        high = sum(max(item.points, 0) for item in self.items)
        if (low, high) != self.points_range:
            raise ValueError(f"{self.id}: items span {low}..{high}, declared {self.points_range}")
        uppers = [band.upper for band in self.bands]
        if self.bands and (uppers[-1] is not None or None in uppers[:-1]):
            raise ValueError(f"{self.id}: only the last band is open-ended")
        finite = [u for u in uppers if u is not None]
        if finite != sorted(set(finite)):
            raise ValueError(f"{self.id}: band limits must increase")
        if self.bands and self.strata:
            raise ValueError(f"{self.id}: estimates go on bands or strata, not both")
        for scenario in self.scenarios:
            for name, value in scenario.inputs.items():
                issue = INPUT_SPECS[name].issue(value)
                if issue is not None:
                    raise ValueError(f"{self.id}: scenario {scenario.id}: {issue}")

    @property
    def inputs(self) -> tuple[str, ...]:
        """The canonical inputs this score needs, in item order."""
        return tuple(dict.fromkeys(item.rule.input for item in self.items))

    def band_of(self, total: float) -> Band:
        for band in self.bands:
            if band.upper is None or total <= band.upper:
                return band
        raise LookupError(f"{self.id} has no bands")
