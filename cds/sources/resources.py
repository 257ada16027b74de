"""Lean, typed views of the FHIR R4 elements the mapping reads.

The hook path is hot: validating a whole prefetch with fhir.resources costs ~30× the JSON parse. These
models read only what the mapping needs, strictly (a string where FHIR says boolean is an error, not
coerced), and ignore everything else. Full fhir.resources validation is kept for what we write.
A malformed resource is reported with its reference and the element (`ResourceProblem`), never
silently half-read.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import cached_property
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

# FHIR R4 primitive formats (http://hl7.org/fhir/R4/datatypes.html), checked by pydantic-core in
# Rust as `pattern`s: a Python validator called from the parse for each of a prefetch's ~100 dates
# was 13 % of the lean parse. The `regex` crate reads them as Python's `fullmatch` would (its `$` is
# the end of the text, where Python's `$` would also accept a trailing newline):
# tests/sources/test_resources.py compares the two. Digits are `[0-9]`, as in FHIR's own regexes:
# `\d` is any Unicode decimal digit in both engines, so `２０１９` (full-width) passed and `int`
# read it as 2019.
DATE_PATTERN = r"^[0-9]{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?)?$"
DATETIME_PATTERN = (
    r"^[0-9]{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9]:"
    r"([0-5][0-9]|60)(\.[0-9]+)?(Z|[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?$"
)
FhirDate = Annotated[str, Field(pattern=DATE_PATTERN)]
FhirDateTime = Annotated[str, Field(pattern=DATETIME_PATTERN)]
# What a site reads when one does not match (the words the Python validators used to give).
_PATTERN_MESSAGES = {
    DATE_PATTERN: "Value error, not a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)",
    DATETIME_PATTERN: "Value error, not a FHIR dateTime",
}
NO_SUCH_DAY = "Value error, no such day in the calendar"


def earliest_day(value: str) -> date:
    """The first calendar day a FHIR date/dateTime can mean ("2019" → 2019-01-01)."""
    year = int(value[:4])
    month = int(value[5:7]) if len(value) >= 7 else 1
    day = int(value[8:10]) if len(value) >= 10 else 1
    return date(year, month, day)


def latest_day(value: str) -> date:
    """The last calendar day a FHIR date/dateTime can mean ("2019" → 2019-12-31)."""
    year = int(value[:4])
    if len(value) < 7:
        return date(year, 12, 31)
    month = int(value[5:7])
    if len(value) < 10:
        first_next = date(year + month // 12, month % 12 + 1, 1)
        return first_next - timedelta(days=1)
    return date(year, month, int(value[8:10]))


def instant_day(value: str) -> date:
    """The calendar day of a full dateTime as written (its own offset), or of a partial date:
    the date part, read as is (a leap second, `23:59:60`, is FHIR but not Python's datetime)."""
    return earliest_day(value[:10])


_PLAIN_YEARS = frozenset("12345678")
"""First digits of years 1000–8999: every month of them has days 1–28 and a following month."""
_LONG_MONTHS = frozenset(("01", "03", "05", "07", "08", "10", "12"))


def real_day(value: str) -> bool:
    """Whether a date/dateTime of the FHIR form names days that exist: 2019-02-30, year 0000 and
    the end of 9999-12 have the form but no day. The pattern has checked the form (ASCII digits):
    days 29–31 and unusual years are what is left to check, and most dates pass the first test."""
    if value[:1] in _PLAIN_YEARS:
        if len(value) < 10:
            return True
        day = value[8:10]
        if day <= "28":
            return True
        if day == "30":
            return value[5:7] != "02"
        if day == "31":
            return value[5:7] in _LONG_MONTHS
    try:  # the 29th (leap years), years 0000 and 9xxx
        earliest_day(value)
        latest_day(value)
    except ValueError:
        return False
    return True


VERSIONED = "/_history/"


def unversioned(reference: str) -> str:
    """The reference without its version: `Practitioner/d1/_history/2` is a version-specific
    reference to `Practitioner/d1` (FHIR R4 references), the same practitioner for who performed
    a procedure, the same patient for whose record it is."""
    head, found, version = reference.rpartition(VERSIONED)
    return head if found and version and "/" not in version else reference


def points_to(reference: str, target: str) -> bool:
    """Whether a reference names `target` ("Practitioner/d1"): relative or absolute, at any
    version of it."""
    if VERSIONED in reference:
        reference = unversioned(reference)
    return reference == target or reference.endswith(f"/{target}")


class _kept(cached_property[str]):  # noqa: N801 - used as a decorator, like its base
    """`functools.cached_property` without the lock Python 3.11 takes on every first read (one
    lock for all instances; 3.12 removed it): the first `ref` of each of a call's ~80 resources
    took it, 1 % of an order-select call. A race would only compute the same string twice."""

    def __get__(self, instance: object, owner: type | None = None) -> str:  # type: ignore[override]
        if instance is None:
            return self  # type: ignore[return-value]
        cache, name = instance.__dict__, str(self.attrname)  # set by __set_name__
        value = cache.get(name)
        if value is None:
            value = cache[name] = self.func(instance)
        return value


class _Element(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True, ignored_types=(_kept,))


class Coding(_Element):
    system: str | None = None
    code: str | None = None
    display: str | None = None


class CodeableConcept(_Element):
    coding: list[Coding] = Field(default_factory=list)
    text: str | None = None


class Identifier(_Element):
    system: str | None = None
    value: str | None = None


class Reference(_Element):
    reference: str | None = None
    identifier: Identifier | None = None
    display: str | None = None


class Quantity(_Element):
    value: float | None = None
    unit: str | None = None
    system: str | None = None
    code: str | None = None


class Period(_Element):
    start: FhirDateTime | None = None
    end: FhirDateTime | None = None


class Resource(_Element):
    resourceType: str  # noqa: N815 - FHIR element name
    id: str | None = None

    @_kept
    def ref(self) -> str:
        # Cached: the mapping reads the ref of every history resource for every order it maps.
        return f"{self.resourceType}/{self.id}" if self.id else f"{self.resourceType}/(no id)"


class HumanName(_Element):
    text: str | None = None
    family: str | None = None
    given: list[str] = Field(default_factory=list)
    prefix: list[str] = Field(default_factory=list)


class Patient(Resource):
    name: list[HumanName] = Field(default_factory=list)  # the app's patient banner
    birthDate: FhirDate | None = None  # noqa: N815
    gender: str | None = None
    identifier: list[Identifier] = Field(default_factory=list)


class Condition(Resource):
    clinicalStatus: CodeableConcept | None = None  # noqa: N815
    verificationStatus: CodeableConcept | None = None  # noqa: N815
    code: CodeableConcept | None = None
    bodySite: list[CodeableConcept] = Field(default_factory=list)  # noqa: N815
    subject: Reference | None = None
    onsetDateTime: FhirDateTime | None = None  # noqa: N815
    onsetPeriod: Period | None = None  # noqa: N815
    encounter: Reference | None = None
    recordedDate: FhirDateTime | None = None  # noqa: N815


class ProcedurePerformer(_Element):
    function: CodeableConcept | None = None
    actor: Reference | None = None


class Procedure(Resource):
    status: str | None = None
    code: CodeableConcept | None = None
    bodySite: list[CodeableConcept] = Field(default_factory=list)  # noqa: N815
    subject: Reference | None = None
    performedDateTime: FhirDateTime | None = None  # noqa: N815
    performedPeriod: Period | None = None  # noqa: N815
    performer: list[ProcedurePerformer] = Field(default_factory=list)
    outcome: CodeableConcept | None = None
    partOf: list[Reference] = Field(default_factory=list)  # noqa: N815


class ObservationComponent(_Element):
    code: CodeableConcept | None = None
    valueBoolean: bool | None = None  # noqa: N815
    valueInteger: int | None = None  # noqa: N815
    valueQuantity: Quantity | None = None  # noqa: N815
    valueCodeableConcept: CodeableConcept | None = None  # noqa: N815
    valueString: str | None = None  # noqa: N815


class Observation(Resource):
    identifier: list[Identifier] = Field(default_factory=list)  # marks write-back findings
    status: str | None = None
    code: CodeableConcept | None = None
    bodySite: CodeableConcept | None = None  # noqa: N815
    subject: Reference | None = None
    focus: list[Reference] = Field(default_factory=list)
    effectiveDateTime: FhirDateTime | None = None  # noqa: N815
    effectivePeriod: Period | None = None  # noqa: N815
    issued: str | None = None
    valueBoolean: bool | None = None  # noqa: N815
    valueInteger: int | None = None  # noqa: N815
    valueQuantity: Quantity | None = None  # noqa: N815
    valueCodeableConcept: CodeableConcept | None = None  # noqa: N815
    valueString: str | None = None  # noqa: N815
    component: list[ObservationComponent] = Field(default_factory=list)
    partOf: list[Reference] = Field(default_factory=list)  # noqa: N815


class DiagnosticReport(Resource):
    status: str | None = None
    code: CodeableConcept | None = None
    subject: Reference | None = None
    effectiveDateTime: FhirDateTime | None = None  # noqa: N815
    result: list[Reference] = Field(default_factory=list)


class ServiceRequest(Resource):
    status: str | None = None
    intent: str | None = None
    code: CodeableConcept | None = None
    bodySite: list[CodeableConcept] = Field(default_factory=list)  # noqa: N815
    subject: Reference | None = None
    authoredOn: FhirDateTime | None = None  # noqa: N815
    encounter: Reference | None = None
    occurrenceDateTime: FhirDateTime | None = None  # noqa: N815
    performer: list[Reference] = Field(default_factory=list)


class Practitioner(Resource):
    identifier: list[Identifier] = Field(default_factory=list)
    name: list[HumanName] = Field(default_factory=list)  # shown on the card (issue 13)


class PractitionerRole(Resource):
    practitioner: Reference | None = None
    identifier: list[Identifier] = Field(default_factory=list)


class OperationOutcomeIssue(_Element):
    severity: str | None = None
    code: str | None = None
    diagnostics: str | None = None
    details: CodeableConcept | None = None


class OperationOutcome(Resource):
    issue: list[OperationOutcomeIssue] = Field(default_factory=list)

    def summary(self) -> str:
        parts = [
            i.diagnostics or (i.details.text if i.details else None) or i.code or "?"
            for i in self.issue
        ]
        return "; ".join(p for p in parts if p)[:300] or "OperationOutcome without detail"


MODELS: dict[str, type[Resource]] = {
    model.__name__: model
    for model in (
        Patient,
        Condition,
        Procedure,
        Observation,
        DiagnosticReport,
        ServiceRequest,
        Practitioner,
        PractitionerRole,
        OperationOutcome,
    )
}


_DATED: dict[type[Resource], tuple[str, ...]] = {
    Patient: ("birthDate",),
    Condition: ("onsetDateTime", "onsetPeriod", "recordedDate"),
    Procedure: ("performedDateTime", "performedPeriod"),
    Observation: ("effectiveDateTime", "effectivePeriod"),
    DiagnosticReport: ("effectiveDateTime",),
    ServiceRequest: ("authoredOn", "occurrenceDateTime"),
}
"""Each model's FHIR date/dateTime elements (a Period's start and end): the patterns check their
form in Rust; `no_such_day` checks that the day exists (tests/sources/test_resources.py keeps this
table complete)."""


def no_such_day(resource: Resource) -> str | None:
    """The first element whose date does not exist, else None. The mapping dates what it reads
    (`earliest_day`), so a resource with such a date is malformed like any other bad element: left
    to the mapping, 2019-02-30 in an unrelated Condition failed the whole call."""
    names = _DATED.get(type(resource))
    if names is None:
        return None
    values = resource.__dict__  # the fields as pydantic set them: no attribute look-up per name
    for name in names:
        value = values[name]
        if value is None:
            continue
        if type(value) is str:
            if not real_day(value):
                return name
            continue
        for part in ("start", "end"):
            text = getattr(value, part)
            if text is not None and not real_day(text):
                return f"{name}.{part}"
    return None


class ResourceProblem(BaseModel):
    """A resource that could not be read: which one, which element, and why."""

    model_config = ConfigDict(frozen=True)

    resource: str
    element: str
    message: str

    def __str__(self) -> str:
        return f"{self.resource}: {self.element}: {self.message}"


def parse_resource(raw: object) -> Resource | ResourceProblem | None:
    """Read one resource JSON into its lean model; None for types the mapping does not read."""
    if not isinstance(raw, dict):
        return ResourceProblem(resource="(entry)", element="resource", message="not a JSON object")
    kind = raw.get("resourceType")
    if not isinstance(kind, str):
        return ResourceProblem(resource="(entry)", element="resourceType", message="missing")
    model = MODELS.get(kind)
    if model is None:
        return None
    try:
        parsed = model.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        element = ".".join(str(part) for part in error["loc"]) or "(resource)"
        rid = raw.get("id")
        name = f"{kind}/{rid}" if isinstance(rid, str) else f"{kind}/(no id)"
        message = error["msg"]
        if error["type"] == "string_pattern_mismatch":
            message = _PATTERN_MESSAGES.get(str(error.get("ctx", {}).get("pattern")), message)
        return ResourceProblem(resource=name, element=element, message=message)
    undated = no_such_day(parsed)
    if undated is not None:
        return ResourceProblem(resource=parsed.ref, element=undated, message=NO_SUCH_DAY)
    return parsed


def parse_resource_json(kind: str, text: str) -> Resource | None:
    """The lean model of one resource given as JSON text whose resourceType is `kind`, read
    straight from the text (no dict built: ~25 % less CPU than a `loads` and `parse_resource`).
    None when the type has no model, JSON mode refuses it or a date names no day: the caller then
    reads the dict and calls `parse_resource`, which accepts it or says what is wrong exactly as
    ever. For these strict models JSON mode accepts only what Python mode accepts, with equal
    values; it refuses a little more (a lone surrogate escape, nesting beyond 200), which the
    fallback then reads (tests/sources/test_resources_json.py)."""
    model = MODELS.get(kind)
    if model is None:
        return None
    try:
        parsed = model.model_validate_json(text)
    except ValidationError:
        return None
    return None if no_such_day(parsed) is not None else parsed
