"""Reading coded elements and dates of lean resources through the mapping tables (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence, Set
from datetime import date

from cds.mapping.tables import CodeRow, MappingTables
from cds.sources.resources import (
    CodeableConcept,
    Condition,
    Observation,
    Procedure,
    Resource,
    ServiceRequest,
    earliest_day,
)

# Statuses that mean "this did not happen or was recorded by mistake" (FHIR R4 value sets).
_VOID_PROCEDURE = {"entered-in-error", "not-done", "preparation"}
_VOID_OBSERVATION = {"entered-in-error", "cancelled", "registered"}
_VOID_CONDITION = {"entered-in-error", "refuted"}
_VOID_ORDER = {"entered-in-error", "revoked", "draft-entered-in-error"}


def counts(resource: Resource) -> bool:
    """False for resources entered in error, refuted, cancelled or not done: they are ignored."""
    if isinstance(resource, Condition):
        status = resource.verificationStatus
        return status is None or not any(c.code in _VOID_CONDITION for c in status.coding)
    if isinstance(resource, Procedure):
        return resource.status not in _VOID_PROCEDURE
    if isinstance(resource, Observation):
        return resource.status not in _VOID_OBSERVATION
    if isinstance(resource, ServiceRequest):
        return resource.status not in _VOID_ORDER
    return True


def day_of(resource: Resource) -> date | None:
    """When it happened (the earliest day the recorded date can mean); None when undated."""
    value: str | None = None
    if isinstance(resource, Condition):
        value = (
            resource.onsetDateTime
            or (resource.onsetPeriod.start if resource.onsetPeriod else None)
            or resource.recordedDate
        )
    elif isinstance(resource, Procedure):
        value = resource.performedDateTime or (
            resource.performedPeriod.start if resource.performedPeriod else None
        )
    elif isinstance(resource, Observation):
        value = resource.effectiveDateTime or (
            resource.effectivePeriod.start if resource.effectivePeriod else None
        )
    elif isinstance(resource, ServiceRequest):
        value = resource.authoredOn or resource.occurrenceDateTime
    return earliest_day(value) if value else None


def rows_for(
    tables: MappingTables,
    resource_type: str,
    element: str,
    concepts: Iterable[CodeableConcept | None],
) -> list[CodeRow]:
    """Enabled rows matching any coding of these concepts found in `resource_type.element`."""
    found: list[CodeRow] = []
    for concept in concepts:
        if concept is None:
            continue
        for coding in concept.coding:
            for row in tables.matches(resource_type, element, coding.system, coding.code):
                if row not in found:
                    found.append(row)
    return found


def concept_rows(
    tables: MappingTables, resource_type: str, element: str, concept: CodeableConcept | None
) -> Sequence[CodeRow]:
    """`rows_for` one concept. A concept of one coding, the usual case, is answered by the tables'
    memo without building a list: this runs for every coded element of every resource read."""
    if concept is None or not concept.coding:
        return ()
    if len(concept.coding) == 1:
        coding = concept.coding[0]
        return tables.matches(resource_type, element, coding.system, coding.code)
    return rows_for(tables, resource_type, element, [concept])


def site_rows(
    tables: MappingTables, resource_type: str, sites: Sequence[CodeableConcept | None]
) -> Sequence[CodeRow]:
    """`rows_for` body sites, read once for both the vessel groups and the ostium."""
    if len(sites) == 1:
        return concept_rows(tables, resource_type, "bodySite", sites[0])
    return rows_for(tables, resource_type, "bodySite", sites)


def groups_in(rows: Iterable[CodeRow]) -> set[str]:
    """Vessel groups (LAD, LCX, ...) named by these body-site rows."""
    return {row.meaning for row in rows if row.concept == "vessel"}


def ostium_in(rows: Iterable[CodeRow]) -> bool:
    return any(row.concept == "ostium" for row in rows)


def vessel_groups(
    tables: MappingTables, resource_type: str, sites: Iterable[CodeableConcept | None]
) -> set[str]:
    """Vessel groups (LAD, LCX, ...) named by body sites."""
    return groups_in(rows_for(tables, resource_type, "bodySite", sites))


def names_ostium(
    tables: MappingTables, resource_type: str, sites: Iterable[CodeableConcept | None]
) -> bool:
    return ostium_in(rows_for(tables, resource_type, "bodySite", sites))


def outcome_meanings(tables: MappingTables, procedure: Procedure) -> frozenset[str]:
    """What a Procedure's outcome codings mean to the tables (success, partial, failure); empty
    when none is read."""
    return frozenset(
        row.meaning
        for row in rows_for(tables, "Procedure", "outcome", [procedure.outcome])
        if row.concept == "outcome"
    )


def success_meanings(tables: MappingTables) -> frozenset[str]:
    """Outcome meanings counted as a technical success (rules.yaml `success`)."""
    partial = tables.rules.success.partial_counts_as_success
    return frozenset({"success", "partial"} if partial else {"success"})


def failure_meanings(tables: MappingTables) -> frozenset[str]:
    """Outcome meanings that make an earlier attempt a failed one (`retry_counts_partial_success`)."""
    partial = tables.rules.retry_counts_partial_success
    return frozenset({"failure", "partial"} if partial else {"failure"})


def outcome_is(meanings: Set[str], wanted: Set[str]) -> bool | None:
    """Whether an outcome reads as one of `wanted`; None when it has no meaning, or when its
    codings disagree (one read as `wanted`, another not: "successful" and "unsuccessful" on one
    Procedure). Conflicting data decides nothing: read as either, it would count silently."""
    hit = meanings & wanted
    if not meanings or (hit and meanings - wanted):
        return None
    return bool(hit)


def is_cto_pci(tables: MappingTables, resource_type: str, code: CodeableConcept | None) -> bool:
    return any(
        row.concept == "cto_pci" for row in concept_rows(tables, resource_type, "code", code)
    )
