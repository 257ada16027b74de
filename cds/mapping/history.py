"""Patient-level inputs: age, sex, prior CABG / MI, CABG to the target vessel, retry, stent history.

"Nothing found" is `false` with the evidence "not documented" only when the searches it depends on were
read completely; otherwise the input stays unknown and the note says which read failed
(docs/spec/inputs.md, "Absent from the record vs unknown").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from cds.mapping.matching import (
    concept_rows,
    counts,
    day_of,
    failure_meanings,
    outcome_is,
    outcome_meanings,
    vessel_groups,
)
from cds.mapping.order import OrderContext
from cds.mapping.provenance import EVIDENCE_RANK, MappedInput, not_documented, unknown
from cds.mapping.tables import CodeRow, MappingTables
from cds.sources.record import PatientRecord
from cds.sources.resources import Condition, Procedure, earliest_day, latest_day

_HISTORY_SEARCHES = ("conditions", "procedures")


@dataclass(frozen=True)
class Hit:
    resource: Condition | Procedure
    row: CodeRow
    day: date | None


def _read_failure(record: PatientRecord, keys: tuple[str, ...] = _HISTORY_SEARCHES) -> str | None:
    # Each reason already names its search and its cause (cds/sources/reasons.py).
    reasons = [record.incomplete[k] for k in keys if k in record.incomplete]
    return "; ".join(reasons) or None


Coded = list[tuple[Condition | Procedure, Sequence[CodeRow]]]


def coded_history(record: PatientRecord, tables: MappingTables) -> Coded:
    """The record's Conditions then Procedures that count and whose code the tables know, with the
    rows of that code. Read once per record: prior CABG, prior MI, stent history, retry and the
    Condition fallbacks each filtered every resource of the history again (most match nothing)."""
    coded: Coded = []
    resources: list[Condition | Procedure] = [*record.conditions, *record.procedures]
    for resource in resources:
        rows = concept_rows(tables, resource.resourceType, "code", resource.code)
        if rows and counts(resource):
            coded.append((resource, rows))
    return coded


def history_hits(
    record: PatientRecord,
    tables: MappingTables,
    concept: str,
    index_date: date,
    exclude_days: int = 0,
    index_stay: str | None = None,
    coded: Coded | None = None,
) -> list[Hit]:
    """Conditions and Procedures coded as `concept` dated before the index date (undated count).

    With `index_stay` (the order's Encounter reference), Conditions of that encounter are not prior.
    `coded`: `coded_history` of this record, when already read.
    """
    hits: list[Hit] = []
    for resource, found in coded_history(record, tables) if coded is None else coded:
        rows = [r for r in found if r.concept == concept]
        if not rows:
            continue
        if (
            index_stay is not None
            and isinstance(resource, Condition)
            and resource.encounter is not None
            and resource.encounter.reference == index_stay
        ):
            continue  # during the index stay: not prior (docs/spec/inputs.md, prior_mi)
        day = day_of(resource)
        if day is not None and (index_date - day).days <= exclude_days:
            continue  # on or after the order date, or in the excluded window: not prior
        hits.append(Hit(resource, rows[0], day))
    return hits


def history_flag(
    record: PatientRecord,
    tables: MappingTables,
    concept: str,
    index_date: date,
    exclude_days: int = 0,
    index_stay: str | None = None,
    coded: Coded | None = None,
) -> tuple[MappedInput, list[Hit]]:
    hits = history_hits(record, tables, concept, index_date, exclude_days, index_stay, coded)
    if hits:
        best = max(hits, key=lambda h: EVIDENCE_RANK[h.row.evidence])
        undated = [h.resource.ref for h in hits if h.day is None]
        note = f"undated record taken as prior: {', '.join(undated)}" if undated else None
        return MappedInput(
            value=True,
            sources=[h.resource.ref for h in hits],
            rule=best.row.id,
            evidence=best.row.evidence,
            note=note,
        ), hits
    failure = _read_failure(record)
    if failure:
        return unknown(
            f"{concept}.history", f"history could not be read completely ({failure})"
        ), []
    return not_documented(
        f"{concept}.not_documented", "no matching Condition or Procedure before the order date"
    ), []


def age(record: PatientRecord, index_date: date) -> MappedInput:
    patient = record.patient
    if patient is None:
        why = record.incomplete.get("patient", "Patient not in the record")
        return unknown("patient.birthDate", f"no Patient resource ({why})")
    if not patient.birthDate:
        return unknown("patient.birthDate", "Patient has no birthDate", [patient.ref])

    def years(born: date) -> int:
        return (
            index_date.year
            - born.year
            - ((index_date.month, index_date.day) < (born.month, born.day))
        )

    oldest, youngest = years(earliest_day(patient.birthDate)), years(latest_day(patient.birthDate))
    if oldest != youngest:
        return unknown(
            "patient.birthDate",
            f"partial birthDate {patient.birthDate}: age {youngest} or {oldest}",
            [patient.ref],
        )
    if oldest < 0:
        return unknown("patient.birthDate", "birthDate after the order date", [patient.ref])
    return MappedInput(
        value=oldest,
        sources=[patient.ref],
        rule="patient.birthDate",
        evidence="patient",
        note=f"at {index_date.isoformat()}",
    )


def sex(record: PatientRecord) -> MappedInput:
    patient = record.patient
    if patient is None or patient.gender not in ("female", "male", "other"):
        return unknown(
            "patient.gender", "no administrative gender recorded", [patient.ref] if patient else []
        )
    return MappedInput(
        value=patient.gender, sources=[patient.ref], rule="patient.gender", evidence="patient"
    )


def cabg_to_target(
    record: PatientRecord,
    tables: MappingTables,
    ctx: OrderContext,
    prior_cabg: MappedInput,
    cabg_hits: list[Hit],
) -> MappedInput:
    """CABG grafting the target vessel ≥ 3 months before the order (scores.md §1; terminology §4.7)."""
    rule = "derive.prior_cabg_target_vessel"
    if prior_cabg.value is False:
        return MappedInput(
            value=False,
            sources=prior_cabg.sources,
            rule=rule,
            evidence=prior_cabg.evidence,
            note="no prior CABG",
        )
    if prior_cabg.value is None:
        return unknown(rule, "prior CABG unknown")
    target = ctx.target
    if target is None:
        return unknown(rule, "CABG recorded; target vessel unknown", prior_cabg.sources)
    min_days = tables.rules.cabg_min_days_before
    undecided, elsewhere, recent = [], [], []
    for hit in cabg_hits:
        groups = vessel_groups(tables, hit.resource.resourceType, hit.resource.bodySite)
        if target in groups:
            if hit.day is None:
                undecided.append(hit.resource.ref)
            elif (ctx.index_date - hit.day).days >= min_days:
                return MappedInput(
                    value=True,
                    sources=[hit.resource.ref],
                    rule=rule,
                    evidence="lesion",
                    note=f"graft to {target}",
                )
            else:
                recent.append(hit.resource.ref)
        elif groups:
            elsewhere.append(hit.resource.ref)
        else:
            undecided.append(hit.resource.ref)
    if undecided:
        return unknown(rule, "CABG recorded without the grafted vessels or date", undecided)
    note = f"grafts recorded, none to {target} ≥ {min_days} days before the order"
    if recent:
        note += f" (graft to {target} less than {min_days} days before: {', '.join(recent)})"
    return MappedInput(
        value=False, sources=elsewhere + recent, rule=rule, evidence="lesion", note=note
    )


def retry(
    record: PatientRecord, tables: MappingTables, ctx: OrderContext, coded: Coded | None = None
) -> MappedInput:
    """An earlier failed CTO-PCI on the target vessel group (terminology.md §4.8)."""
    rule = "derive.retry_lesion"
    failing = failure_meanings(tables)
    target = ctx.target
    same: list[str] = []
    undecided: list[str] = []
    conflicting: list[str] = []
    cto_pcis = {
        id(resource)
        for resource, rows in (coded_history(record, tables) if coded is None else coded)
        if isinstance(resource, Procedure) and any(r.concept == "cto_pci" for r in rows)
    }
    for proc in record.procedures:
        # Every Procedure is dated first, as always: an impossible date fails the mapping.
        day = day_of(proc)
        if id(proc) not in cto_pcis:
            continue
        if day is not None and day >= ctx.index_date:
            continue
        groups = vessel_groups(tables, "Procedure", proc.bodySite)
        on_target = target in groups if target is not None and groups else None
        if on_target is False:
            continue
        meanings = outcome_meanings(tables, proc)
        failed = outcome_is(meanings, failing)
        if failed:
            (same if on_target else undecided).append(proc.ref)
        elif failed is None:
            # Its result not recorded, or coded both as failed and not: never read as "no retry".
            undecided.append(proc.ref)
            if meanings:
                conflicting.append(proc.ref)
    if same:
        return MappedInput(
            value=True,
            sources=same,
            rule=rule,
            evidence="lesion",
            note="earlier failed CTO-PCI on the target vessel",
        )
    if undecided:
        why = "earlier CTO-PCI with unknown vessel or result"
        if conflicting:
            why += f" (outcome codes that conflict, failed and not: {', '.join(conflicting)})"
        return unknown(rule, why, undecided)
    failure = _read_failure(record, ("procedures",))
    if failure:
        return unknown(rule, f"procedures could not be read completely ({failure})")
    return not_documented(rule, "no earlier failed CTO-PCI on the target vessel")


def stent_history(
    record: PatientRecord, tables: MappingTables, index_date: date, coded: Coded | None = None
) -> MappedInput | None:
    """`in_stent_occlusion` is false when the record shows no stent or PCI ever; else None (open)."""
    hits = history_hits(record, tables, "prior_pci", index_date, coded=coded)
    if hits:
        return None
    failure = _read_failure(record)
    if failure:
        return None
    return not_documented("in_stent_occlusion.no_pci", "no coronary stent or PCI in the record")
