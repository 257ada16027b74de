"""The resources a save holds, from (record, order, scored case, entered inputs, user, now) (pure).

* One Observation per entered lesion finding: code from the project's CodeSystem (`rules.local_system`,
  the row of mappings/codes.csv) plus the standard code where docs/spec/terminology.md has one (NCDR
  100013030 lesion length §4.3, DCM 122132 calcification severity §4.4, SNOMED 386137000 tortuosity
  §4.5), the value typed as the input, bodySite = the order's target vessel (SNOMED, §4.2), focus = the
  order. The mapping reads them back through the same codes.csv rows (closed loop).
* The score Observations and the Operator-CTO RiskAssessment (scores.py).

References between planned resources are their urn:uuid (identity.full_url) until the plan resolves
them. Every body is validated with fhir.resources R4B before anything is sent (validate_json).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from datetime import date

from cds.errors import InputError, InputIssue
from cds.fhir_models import r4b_models
from cds.mapping.findings import LESION_INPUTS
from cds.mapping.provenance import MappedInput
from cds.mapping.record_inputs import MappingResult, map_record
from cds.mapping.tables import CodeRow, MappingTables
from cds.pipeline import policy_of
from cds.scored_case import ScoredCase
from cds.scoring.engine import score_all
from cds.scoring.inputs import InputValue, parse_inputs
from cds.scoring.scores import definitions
from cds.sources.record import PatientRecord
from cds.sources.resources import ServiceRequest
from cds.writeback.identity import ENTERED_NOTE, full_url, resource_key
from cds.writeback.resource import (
    OBSERVATION_CATEGORY,
    SNOMED,
    UCUM,
    Json,
    Planned,
    SaveContext,
    coding,
    stamp,
    timed,
)
from cds.writeback.scores import SCORE_CODES, no_estimate, risk_assessment, score_observation

# Standard codes sent beside the local one (docs/spec/terminology.md §4.3-4.5).
STANDARD_CODES: dict[str, tuple[str, str, str]] = {
    "occlusion_length_mm": (
        "http://hl7.org/fhir/us/registry-protocols/CodeSystem/NCDRQuestionCodesCS",
        "100013030",
        "Lesion Length",
    ),
    "calcification": (
        "http://dicom.nema.org/resources/ontology/DCM",
        "122132",
        "Severity of Calcification",
    ),
    "tortuosity": (SNOMED, "386137000", "Tortuous coronary artery"),
}
# DICOM CID 3716 severity values (docs/spec/terminology.md §4.4; "moderate" = 6736007, not the
# "mild to moderate" 371923003 the mapping also reads).
CID_3716 = {"none": "260413007", "mild": "255604002", "moderate": "6736007", "severe": "24484000"}
SEVERITY_INPUTS = ("calcification", "tortuosity")


def check_entered(raw: object) -> dict[str, InputValue]:
    """Canonical inputs (parse_inputs rules) that are lesion findings; null/missing = not entered.

    Issues are located as parse_inputs locates them (`inputs.NAME`)."""
    parsed = parse_inputs(raw)
    issues = [
        InputIssue(
            ("inputs", name),
            value,
            "not_a_finding",
            "save writes lesion findings only (the rest is read from the record)",
        )
        for name, value in parsed.items()
        if value is not None and name not in LESION_INPUTS
    ]
    if issues:
        raise InputError(issues)
    entered = {name: value for name, value in parsed.items() if value is not None}
    if not entered:
        raise InputError(
            [InputIssue(("inputs",), raw, "nothing_entered", "no lesion finding to save")]
        )
    return entered


def finding_key(ctx: SaveContext, name: str) -> str:
    return resource_key(ctx.patient_id, ctx.order_ref, f"finding:{name}")


def with_entered(
    mapping: MappingResult, entered: Mapping[str, InputValue], ctx: SaveContext
) -> MappingResult:
    """The record's inputs with the entered findings in place, each sourced to its Observation."""
    inputs = dict(mapping.inputs)
    for name, value in entered.items():
        inputs[name] = MappedInput(
            value=value,
            sources=[full_url(finding_key(ctx, name))],
            rule=f"{name}.entered",
            evidence="lesion",
            note=ENTERED_NOTE,
        )
    return mapping.model_copy(update={"inputs": inputs})


def score_with_entered(
    record: PatientRecord,
    tables: MappingTables,
    today: date,
    entered: Mapping[str, InputValue],
    ctx: SaveContext,
) -> ScoredCase:
    mapping = with_entered(map_record(record, tables, today), entered, ctx)
    report = score_all(parse_inputs(mapping.values()), policy_of(tables))
    return ScoredCase(report=report, mapping=mapping)


def order_body_site(order: ServiceRequest, tables: MappingTables) -> Json | None:
    """The order's body-site codings that name a vessel (SNOMED, terminology.md §4.2), if any."""
    for site in order.bodySite:
        codings = [
            {
                k: v
                for k, v in {"system": c.system, "code": c.code, "display": c.display}.items()
                if v
            }
            for c in site.coding
            if any(
                r.concept == "vessel"
                for r in tables.lookup("Observation", "bodySite", c.system, c.code)
            )
        ]
        if codings:
            return {"coding": codings}
    return None


def _local_row(tables: MappingTables, name: str, element: str, meaning: str | None) -> CodeRow:
    for row in tables.rows:
        if (
            row.enabled
            and row.concept == name
            and row.element == element
            and row.system == tables.rules.local_system
            and (meaning is None or row.meaning == meaning)
        ):
            return row
    raise LookupError(f"no {element} row for {name} in the local CodeSystem")


def _finding_value(tables: MappingTables, name: str, value: InputValue) -> Json:
    if isinstance(value, bool):
        return {"valueBoolean": value}
    if name == "occlusion_length_mm":
        return {"valueQuantity": {"value": value, "unit": "mm", "system": UCUM, "code": "mm"}}
    if isinstance(value, int):
        return {"valueInteger": value}
    if isinstance(value, float):
        raise LookupError(f"{name}: no FHIR type for a decimal finding")
    codings = []
    # tortuosity none..severe exist only as SNOMED CID 3716 codes, so the local code is optional.
    with suppress(LookupError):
        codings.append(
            coding(tables.rules.local_system, _local_row(tables, name, "value", value).code)
        )
    if name in SEVERITY_INPUTS and value in CID_3716:
        codings.append(coding(SNOMED, CID_3716[value]))
    if not codings:
        raise LookupError(f"{name}: no code for the value {value!r}")
    return {"valueCodeableConcept": {"coding": codings, "text": value}}


def finding(tables: MappingTables, ctx: SaveContext, name: str, value: InputValue) -> Planned:
    row = _local_row(tables, name, "code", None)
    codings = [coding(row.system, row.code)]
    if name in STANDARD_CODES:
        codings.append(coding(*STANDARD_CODES[name]))
    body: Json = {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [coding(OBSERVATION_CATEGORY, "imaging", "Imaging")]}],
        "code": {"coding": codings, "text": name},
        "subject": {"reference": f"Patient/{ctx.patient_id}"},
        "focus": [{"reference": ctx.order_ref}],
        **_finding_value(tables, name, value),
    }
    if ctx.body_site is not None:
        body["bodySite"] = ctx.body_site
    key = finding_key(ctx, name)
    return timed(stamp(body, f"finding {name}", key), ctx, "effectiveDateTime")


def build_resources(
    tables: MappingTables,
    ctx: SaveContext,
    case: ScoredCase,
    entered: Mapping[str, InputValue],
) -> list[Planned]:
    """Findings first, then scores, then the risk assessment: the order a sequential write needs."""
    score_inputs = {d.id: d.inputs for d in definitions(policy_of(tables))}
    planned = []
    for name, value in entered.items():
        try:
            planned.append(finding(tables, ctx, name, value))
        except LookupError as exc:
            # Site mapping tables without the code: one line naming the finding, not a traceback.
            why = f"cannot be written: {exc} (mappings/codes.csv)"
            raise InputError([InputIssue(("inputs", name), value, "no_code", why)]) from None
    scores = [
        score_observation(tables, ctx, case, score_id, score_inputs[score_id])
        for score_id in case.report.scores
        if score_id in SCORE_CODES
    ]
    planned += scores
    operator = next((p for p in scores if p.what == "score operator_cto"), None)
    if operator is not None:
        # Without a band, an estimate saved before is withdrawn (only if the server holds one).
        planned.append(risk_assessment(ctx, case, operator) or no_estimate(ctx, case, operator))
    return planned


def validate_json(body: Json) -> None:
    """Validate with fhir.resources R4B; raises pydantic's ValidationError naming the element, or
    ConfigError when the `fhir` extra is not installed."""
    models = r4b_models("Observation", "Provenance", "RiskAssessment")
    models[body["resourceType"]].model_validate(body)
