"""The data path in one call: record source → mapping → scoring. Used by the CLI, the hook and the app.

Only the source does I/O; everything after `read_record` is pure. The result, a `ScoredCase`, lives
in `cds.scored_case` so that its readers need not import this orchestration.
"""

from __future__ import annotations

from datetime import date

from cds.mapping.operator import OperatorHistories, history_planner
from cds.mapping.order import find_order
from cds.mapping.record_inputs import map_record
from cds.mapping.tables import MappingTables
from cds.scored_case import ScoredCase
from cds.scoring.engine import score_all
from cds.scoring.inputs import parse_inputs
from cds.scoring.scores import ScoringPolicy
from cds.sources.record import PatientRecord, RecordRequest, RecordSource, read_record


def policy_of(tables: MappingTables) -> ScoringPolicy:
    rules = tables.rules
    return ScoringPolicy(
        cl_score_any_prior_cabg=rules.cl_score_any_prior_cabg, lm_ramus_as_lad=rules.lm_ramus_as_lad
    )


def score_record(
    record: PatientRecord,
    tables: MappingTables,
    today: date,
    histories: OperatorHistories | None = None,
    *,
    labels: bool = True,
) -> ScoredCase:
    """`labels=False`: no card will be shown, so the mapping's source labels are not built."""
    mapping = map_record(record, tables, today, histories, labels=labels)
    # The mapping only produces valid values; parse_inputs re-checks the contract on the way in.
    report = score_all(parse_inputs(mapping.values()), policy_of(tables))
    return ScoredCase(report=report, mapping=mapping)


async def score_patient(
    source: RecordSource, request: RecordRequest, tables: MappingTables, today: date
) -> tuple[ScoredCase, PatientRecord]:
    record = await read_record(
        source, request, lambda rec: find_order(rec, tables)[0], history_planner(tables, today)
    )
    return score_record(record, tables, today), record
