"""A scored case: the score report with the mapping it was computed from (pure data).

Its own module so that the presentation layers (`cds.output`, the CLI, the app) can take a scored
case without importing the orchestration in `cds.pipeline`, which reaches the record sources.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

from cds.mapping.provenance import MappedInput
from cds.mapping.record_inputs import MappingResult
from cds.scoring.result import ScoreReport


class ScoredCase(BaseModel):
    """Scores with the inputs they were computed from and where each input came from."""

    model_config = ConfigDict(frozen=True)

    report: ScoreReport
    mapping: MappingResult

    def contract(self, scores: Mapping[str, object] | None = None) -> dict[str, object]:
        """The `cto-cds score --json` object for FHIR-sourced inputs (docs/spec/inputs.md).

        `scores`: the report's scores already serialised, one per score id (the batch keeps the
        JSON of each result it has seen: `cds/batch/run.py`); by default they are dumped here."""
        return {
            "scores": self.report.model_dump(mode="json")["scores"] if scores is None else scores,
            "inputs": {name: _input_json(mapped) for name, mapped in self.mapping.inputs.items()},
            "context": {
                "index_date": self.mapping.index_date.isoformat(),
                "order": self.mapping.order,
                "operator": self.mapping.operator,
                "notes": self.mapping.notes,
                "diagnostics": self.mapping.diagnostics,
            },
        }


def _input_json(mapped: MappedInput) -> dict[str, object]:
    """`mapped.model_dump(mode="json")`, built directly (a third of the time; 22 per case): every
    field is already a JSON value. tests/batch/test_dump.py checks it against model_dump."""
    return {
        "value": mapped.value,
        "sources": list(mapped.sources),
        "rule": mapped.rule,
        "evidence": mapped.evidence,
        "note": mapped.note,
    }
