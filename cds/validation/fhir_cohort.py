"""A validation cohort from a Bulk FHIR export: each completed CTO-PCI Procedure with its outcome.

Why it is built this way:

* One lesion per CTO-PCI Procedure (mapping tables: `is_cto_pci`) that counts (not entered in error),
  is completed, dated, and whose `outcome` the tables read as success, partial or failure
  (docs/spec/terminology.md §5.2; partial counts as success only if rules.yaml says so, as for the
  operator's success rate; codings read both as a success and not are no outcome). Anything else is a `RowError` naming the Procedure, not a silent drop.
* Its inputs are what the service would have computed when the procedure was ordered: the procedure
  stands in for its order (same code, body site, performer, subject; the performed day as the index
  date), and the record is read and mapped by the same `read_record` + `score_record` as every other
  path, from the export spooled patient by patient (`cds/batch/`). The procedure itself is never its
  own history: the mapping only counts events before the index date.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from cds.batch.run import unread_cto_pci, without_patient
from cds.batch.source import OperatorCache, SpoolPatientSource
from cds.batch.spool import Spool, loads
from cds.errors import CdsError
from cds.mapping.matching import (
    counts,
    day_of,
    is_cto_pci,
    outcome_is,
    outcome_meanings,
    success_meanings,
)
from cds.mapping.operator import OperatorHistories, history_planner
from cds.mapping.tables import MappingTables, load_tables
from cds.pipeline import score_record
from cds.sources.record import RecordRequest, read_record
from cds.sources.resources import Procedure, parse_resource
from cds.validation.cohort import Cohort, CohortError, Lesion, RowError

_DONE = {"completed"}


def _as_order(raw: dict[str, object], procedure: Procedure) -> dict[str, object]:
    day = day_of(procedure)
    assert day is not None
    actor = procedure.performer[0].actor if procedure.performer else None
    order: dict[str, object] = {
        "resourceType": "ServiceRequest",
        "id": f"{procedure.id}-order",
        "status": "completed",
        "intent": "order",
        "authoredOn": day.isoformat(),
    }
    # The encounter too: an MI during the index stay is not a prior MI (terminology rules).
    for key in ("code", "subject", "bodySite", "encounter"):
        if key in raw:
            order[key] = raw[key]
    if actor is not None and actor.reference:
        order["performer"] = [{"reference": actor.reference}]
    return order


def _outcome(tables: MappingTables, procedure: Procedure) -> int | str:
    """1 success, 0 not; else why there is no outcome (none read, or codings that conflict: a
    lesion coded both successful and unsuccessful is no evidence either way)."""
    meanings = outcome_meanings(tables, procedure)
    success = outcome_is(meanings, success_meanings(tables))
    if success is not None:
        return int(success)
    if not meanings:
        return "has no code the mapping tables read as an outcome"
    return f"is coded as {' and '.join(sorted(meanings))}: the codes conflict, no outcome"


async def _lesions(spool: Spool, tables: MappingTables, cohort: Cohort) -> None:
    operators = OperatorCache(spool)
    histories = OperatorHistories(tables)
    for patient in spool.iter_patients_with("Procedure"):
        rows = spool.patient_rows(patient)
        source = SpoolPatientSource(spool, rows, operators)
        for kind, text in rows:
            if kind != "Procedure":
                continue
            raw = loads(text)
            procedure = parse_resource(raw)
            if not isinstance(procedure, Procedure):
                problem = unread_cto_pci(tables, "Procedure", raw)
                if problem is not None:
                    cohort.errors.append(
                        RowError(0, problem.element, "", problem.message, problem.resource)
                    )
                continue
            if not counts(procedure):
                continue
            if not is_cto_pci(tables, "Procedure", procedure.code):
                continue
            where = f"Procedure/{procedure.id}"
            if procedure.status not in _DONE:
                status = procedure.status or ""  # absent: not shown as the value 'None'
                why = "is not completed" if status else "is missing (must be completed)"
                cohort.errors.append(RowError(0, "status", status, why, where))
                continue
            day = day_of(procedure)
            if day is None:
                cohort.errors.append(
                    RowError(0, "performed[x]", "", "is missing: no index date", where)
                )
                continue
            outcome = _outcome(tables, procedure)
            if isinstance(outcome, str):
                cohort.errors.append(RowError(0, "outcome", "", outcome, where))
                continue
            try:
                request = RecordRequest(patient_id=patient, order=_as_order(raw, procedure))
                record = await read_record(source, request, None, history_planner(tables, day))
                case = score_record(record, tables, day, histories)
            except (CdsError, ValueError, OverflowError) as exc:  # a date near 9999-12-31
                cohort.errors.append(RowError(0, "record", "", str(exc), where))
                continue
            if record.patient is None:  # as a batch run says: the subject's record is not there
                why = "no Patient resource with this id in the export"
                cohort.errors.append(RowError(0, "subject", "", why, where))
                continue
            cohort.lesions.append(
                Lesion(
                    line=0,
                    inputs=dict(case.mapping.values()),
                    technical_success=outcome,
                    operator_id=record.operator_id,
                    procedure_date=day,
                    lesion_id=where,
                )
            )


def read_fhir_cohort(directory: Path, mappings: Path | None = None) -> Cohort:
    """Spool the export, then read one lesion per completed CTO-PCI Procedure (module notes)."""
    tables = load_tables(mappings)
    cohort = Cohort(str(directory), mappings=tables.version)
    with tempfile.TemporaryDirectory(prefix="cto-cds-validate-") as tmp:
        spool = Spool(Path(tmp) / "spool.sqlite", create=True)
        try:
            stored = spool.ingest(
                directory, lambda where, why: cohort.errors.append(RowError(0, "", "", why, where))
            )
            if not stored:  # say why there is nothing, not only "no usable lesion"
                raise CohortError(
                    str(cohort.errors[0])
                    if cohort.errors
                    else f"{directory}: its NDJSON files hold no resource"
                )
            asyncio.run(_lesions(spool, tables, cohort))
            for ref in without_patient(spool, tables, "Procedure"):
                why = "is not a Patient reference: no record to read"
                cohort.errors.append(RowError(0, "subject", "", why, ref))
        finally:
            spool.close()
    return cohort
