"""A scored case: the score report with the mapping it was computed from (pure data).

Its own module so that the presentation layers (`cds.output`, the CLI, the app) can take a scored
case without importing the orchestration in `cds.pipeline`, which reaches the record sources.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

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
            "inputs": self.mapping.model_dump(mode="json", include={"inputs"})["inputs"],
            "context": {
                "index_date": self.mapping.index_date.isoformat(),
                "order": self.mapping.order,
                "operator": self.mapping.operator,
                "notes": self.mapping.notes,
                "diagnostics": self.mapping.diagnostics,
            },
        }
