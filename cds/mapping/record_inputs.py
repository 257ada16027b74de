"""The whole mapping: a patient's record → every canonical input with its provenance (pure)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from pydantic import BaseModel, ConfigDict

from cds.mapping import history
from cds.mapping.case_labels import CaseLabels, case_labels
from cds.mapping.findings import (
    LESION_INPUTS,
    Candidate,
    by_input,
    observation_candidates,
    resolve,
    typed_value,
)
from cds.mapping.matching import concept_rows, counts, day_of
from cds.mapping.operator import OperatorHistories, operator_inputs
from cds.mapping.order import order_context
from cds.mapping.provenance import MappedInput, unknown
from cds.mapping.tables import MappingTables
from cds.scoring.inputs import INPUTS, InputValue
from cds.sources.record import PatientRecord


class MappingResult(BaseModel):
    """Every canonical input with provenance, and the context it was read in."""

    model_config = ConfigDict(frozen=True)

    inputs: dict[str, MappedInput]
    index_date: date
    order: str | None
    operator: str | None
    notes: list[str]
    """For the clinician (shown on the card): order choice, findings ignored, malformed data."""
    diagnostics: list[str] = []
    """For the integration engineer (CLI, audit; not on the card): server behaviour."""
    labels: CaseLabels = CaseLabels()
    """Clinical names of the target, order, operator and sources, for the card (no FHIR ids)."""

    def values(self) -> dict[str, InputValue | None]:
        return {name: mapped.value for name, mapped in self.inputs.items()}


def _condition_candidates(
    record: PatientRecord, tables: MappingTables, index_date: date
) -> list[Candidate]:
    """Patient-level fallbacks coded as Conditions (e.g. ICD-10-CM I25.84 → severe calcification).
    Every counted Condition is dated, coded or not: an impossible date fails the mapping, as before."""
    found = []
    for condition in record.conditions:
        if not counts(condition):
            continue
        day = day_of(condition)
        if day is not None and day > index_date:
            continue
        for row in concept_rows(tables, "Condition", "code", condition.code):
            if row.concept in LESION_INPUTS and row.meaning.startswith("present:"):
                found.append(
                    Candidate(
                        row.concept,
                        typed_value(row.concept, row.meaning[8:]),
                        row.evidence,
                        day,
                        condition.ref,
                        row.id,
                    )
                )
    return found


def map_record(
    record: PatientRecord,
    tables: MappingTables,
    today: date,
    histories: OperatorHistories | None = None,
    *,
    labels: bool = True,
) -> MappingResult:
    """Map a record to canonical inputs; `today` is used only when the order has no date.
    `histories`: operator histories already read, when many records share them (batch).
    `labels=False` leaves `labels` empty, for callers that show no card (the batch's result lines
    hold no labels): naming every source costs one entry per history resource, ≈ 300 per order in a
    registry, about 6 % of a batch order's CPU."""
    ctx = order_context(record, tables, today)
    index = ctx.index_date
    notes = [f"order: {ctx.note}"] if ctx.note else []
    inputs: dict[str, MappedInput] = {
        "age_years": history.age(record, index),
        "sex": history.sex(record),
        "target_vessel": ctx.target_vessel,
    }
    coded = history.coded_history(record, tables)
    inputs["prior_cabg"], cabg_hits = history.history_flag(
        record, tables, "prior_cabg", index, coded=coded
    )
    inputs["prior_mi"], _ = history.history_flag(
        record,
        tables,
        "prior_mi",
        index,
        tables.rules.prior_mi_exclude_days,
        ctx.order.encounter.reference if ctx.order and ctx.order.encounter else None,
        coded,
    )
    skipped: list[str] = []
    candidates = observation_candidates(
        tables,
        record.observations,
        LESION_INPUTS,
        ctx.target,
        skipped,
    )
    candidates += _condition_candidates(record, tables, index)
    notes += skipped
    observations_failed = record.incomplete.get("observations")
    derived: dict[str, Callable[[], MappedInput | None]] = {
        "prior_cabg_target_vessel": lambda: history.cabg_to_target(
            record, tables, ctx, inputs["prior_cabg"], cabg_hits
        ),
        "retry_lesion": lambda: history.retry(record, tables, ctx, coded),
        "in_stent_occlusion": lambda: history.stent_history(record, tables, index, coded),
        "ostial_location": lambda: ctx.ostial,
    }
    grouped = by_input(candidates)
    for name in LESION_INPUTS:
        found = resolve(name, grouped.get(name, []))
        if found is not None and found.value is not None:
            inputs[name] = found
            continue
        fallback = derived[name]() if name in derived else None
        if fallback is not None:
            inputs[name] = fallback
        elif found is not None:
            inputs[name] = found
        elif observations_failed:
            inputs[name] = unknown(
                f"{name}.finding", f"findings could not be read ({observations_failed})"
            )
        else:
            inputs[name] = unknown(f"{name}.finding", "no finding recorded for the target lesion")
    inputs.update(operator_inputs(record, tables, index, histories))
    diagnostics = []
    for key, count in record.ignored.items():
        diagnostics.append(
            f"{key}: ignored {count} result(s) the server returned that did not match the search"
        )
    for problem in record.problems:
        notes.append(f"ignored malformed resource: {problem}")
    return MappingResult(
        inputs={spec.name: inputs[spec.name] for spec in INPUTS},
        index_date=index,
        order=ctx.order.ref if ctx.order else None,
        operator=f"Practitioner/{record.operator_id}" if record.operator_id else None,
        notes=notes,
        diagnostics=diagnostics,
        labels=case_labels(record, ctx.order) if labels else CaseLabels(),
    )
