"""The scoring result: the `cto-cds score --json` contract of docs/spec/inputs.md, as pydantic models.

Keys the contract names keep its names and meaning; the extra keys (`name`, `outcome_label`,
`citation`, `groups`, `scenarios`, ...) only add explanation.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

Points = int | float
"""Item and total points: integers, except CL-score halves."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ItemResult(_Frozen):
    id: str
    points: Points
    present: bool | None
    input: str
    value: bool | int | float | str | None
    group: str
    label: str


class EstimateResult(_Frozen):
    """A published outcome rate for the band (or stratum) every completion of the inputs falls in."""

    proportion: float
    successes: int | None
    n: int | None
    ci95: tuple[float, float] | None
    outcome: str
    note: str


class Range(_Frozen):
    """Points reachable by some completion of the unknown inputs, and the bands they fall in."""

    points: Points | None
    min: Points
    max: Points
    band: str | None
    bands: list[str]


class Subtotal(_Frozen):
    """Points of one group of items (e.g. Operator-CTO's lesion part and operator adjustment)."""

    points: Points | None
    min: Points
    max: Points


class ScoreResult(_Frozen):
    name: str
    points: Points | None
    min: Points
    max: Points
    band: str | None
    bands: list[str]
    outcome: str
    outcome_label: str
    estimate: EstimateResult | None
    items: list[ItemResult]
    missing: list[str]
    groups: dict[str, Subtotal]
    scenarios: dict[str, Range]
    citation: str
    url: str | None


class ScoreReport(_Frozen):
    scores: dict[str, ScoreResult]
