"""Where each canonical input came from: the `inputs` object of the scoring JSON contract."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cds.scoring.inputs import InputValue

Evidence = Literal["lesion", "patient", "claim", "not documented", "unknown"]
EVIDENCE_RANK: dict[str, int] = {"lesion": 3, "patient": 2, "claim": 1}


class MappedInput(BaseModel):
    """One input's value with its provenance (docs/spec/inputs.md, `"inputs"`)."""

    model_config = ConfigDict(frozen=True)

    value: InputValue | None
    sources: list[str] = Field(default_factory=list)
    rule: str
    evidence: Evidence
    note: str | None = None


def unknown(rule: str, note: str, sources: list[str] | None = None) -> MappedInput:
    if sources:
        return MappedInput(value=None, sources=sources, rule=rule, evidence="unknown", note=note)
    return _sourceless(None, rule, "unknown", note)


def not_documented(rule: str, note: str) -> MappedInput:
    return _sourceless(False, rule, "not documented", note)


@lru_cache(maxsize=1024)
def _sourceless(value: bool | None, rule: str, evidence: Evidence, note: str) -> MappedInput:
    """One instance per distinct input without sources, shared: a batch order builds ~10, nearly
    always from the same few rules and notes. Sharing is safe: the model is frozen and nothing
    changes its `sources` in place."""
    return MappedInput(value=value, sources=[], rule=rule, evidence=evidence, note=note)
