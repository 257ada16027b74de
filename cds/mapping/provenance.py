"""Where each canonical input came from: the `inputs` object of the scoring JSON contract."""

from __future__ import annotations

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
    return MappedInput(value=None, sources=sources or [], rule=rule, evidence="unknown", note=note)


def not_documented(rule: str, note: str) -> MappedInput:
    return MappedInput(value=False, rule=rule, evidence="not documented", note=note)
