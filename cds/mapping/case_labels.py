"""What a clinician calls the things a case was read from (pure): target, order, operator, sources.

The card must say what was scored, for whom and by whom without FHIR ids (issue 13): the order's
body site as written ("Proximal right coronary artery"), the order's name and date, the operator's
name with the NPI as secondary text, and for each FHIR reference behind an input the place a
clinician would look ("angiography report 2026-08-20", "operator registry"). The ids themselves
stay in the mapping's provenance, so the audit and the JSON output keep them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from cds.sources.record import PatientRecord
from cds.sources.resources import (
    CodeableConcept,
    HumanName,
    Observation,
    Procedure,
    ServiceRequest,
)

NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"


class CaseLabels(BaseModel):
    """Human names for the order, its target, the operator and the sources of the inputs."""

    model_config = ConfigDict(frozen=True)

    target_site: str | None = None
    """The order's body site as the EHR names it (text, else the first coding's display)."""
    order: str | None = None
    """The order's name as the EHR gives it (code text, else display)."""
    order_date: str | None = None
    operator_name: str | None = None
    operator_npi: str | None = None
    sources: dict[str, str] = Field(default_factory=dict)
    """FHIR reference → where a clinician would find it, e.g. "angiography report 2026-08-20"."""


def concept_text(concept: CodeableConcept | None) -> str | None:
    if concept is None:
        return None
    if concept.text:
        return concept.text
    return next((c.display for c in concept.coding if c.display), None)


def name_text(names: list[HumanName]) -> str | None:
    """'Dr. Hanna Achterberg': the first name's text, else prefix, given and family names."""
    for name in names:
        if name.text:
            return name.text
        parts = [*name.prefix, *name.given, *([name.family] if name.family else [])]
        if parts:
            return " ".join(parts)
    return None


def _day(value: str | None) -> str:
    return f" {value[:10]}" if value else ""


def _procedure_day(procedure: Procedure) -> str:
    period = procedure.performedPeriod
    return _day(procedure.performedDateTime or (period.start if period else None))


def _observation_day(observation: Observation) -> str:
    period = observation.effectivePeriod
    return _day(observation.effectiveDateTime or (period.start if period else None))


def _order_sources(order: ServiceRequest | None) -> dict[str, str]:
    return {order.ref: f"the order{_day(order.authoredOn)}"} if order else {}


def source_labels(record: PatientRecord, order: ServiceRequest | None) -> dict[str, str]:
    """Each reference the mapping may cite → a clinician's name for it."""
    labels: dict[str, str] = _order_sources(order)
    in_report: dict[str, str] = {}
    for report in record.reports:
        labels[report.ref] = f"angiography report{_day(report.effectiveDateTime)}"
        for result in report.result:
            if result.reference:
                in_report[result.reference] = labels[report.ref]
    for observation in record.observations:
        labels[observation.ref] = in_report.get(
            observation.ref, f"angiography finding{_observation_day(observation)}"
        )
    for condition in record.conditions:
        labels[condition.ref] = f"problem list{_day(condition.onsetDateTime)}"
    for procedure in record.procedures:
        labels[procedure.ref] = f"procedure history{_procedure_day(procedure)}"
    if record.patient is not None:
        labels[record.patient.ref] = "patient demographics"
    for procedure in record.operator_procedures:
        labels[procedure.ref] = "EHR procedure history"
    for observation in record.operator_observations:
        labels[observation.ref] = f"site entry about the operator{_observation_day(observation)}"
    for role in record.operator_roles:
        labels[role.ref] = "operator registry"
    if record.operator_id:
        labels[f"Practitioner/{record.operator_id}"] = "operator registry"
    return labels


def case_labels(record: PatientRecord, order: ServiceRequest | None) -> CaseLabels:
    operator = record.operator
    npi = None
    if operator is not None:
        npi = next((i.value for i in operator.identifier if i.system == NPI_SYSTEM), None)
    return CaseLabels(
        target_site=next((t for t in map(concept_text, order.bodySite) if t), None)
        if order
        else None,
        order=concept_text(order.code) if order else None,
        order_date=(order.authoredOn or order.occurrenceDateTime or "")[:10] or None
        if order
        else None,
        operator_name=name_text(operator.name) if operator else None,
        operator_npi=npi,
        sources=source_labels(record, order),
    )
