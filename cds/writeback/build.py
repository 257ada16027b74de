"""The resources a save holds, from (record, order, scored case, entered inputs, user, now) (pure).

* One Observation per entered lesion finding: code from the project's CodeSystem (`rules.local_system`,
  the row of mappings/codes.csv) plus the standard code where docs/spec/terminology.md has one (NCDR
  100013030 lesion length §4.3, DCM 122132 calcification severity §4.4, SNOMED 386137000 tortuosity
  §4.5), the value typed as the input, bodySite = the order's target vessel (SNOMED, §4.2), focus = the
  order. The mapping reads them back through the same codes.csv rows (closed loop).
* One Observation per score: points (or a valueRange when unknown inputs leave a range, then no band),
  one component per item, interpretation = band, method = score id and version, derivedFrom = every
  resource the inputs came from.
* A RiskAssessment with the Operator-CTO published estimate when the band is known.

References between planned resources are their urn:uuid (identity.full_url) until the plan resolves
them. Every body is validated with fhir.resources R4B before anything is sent (validate_json).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from cds import __version__
from cds.errors import InputError, InputIssue
from cds.mapping.findings import LESION_INPUTS
from cds.mapping.provenance import MappedInput
from cds.mapping.record_inputs import MappingResult, map_record
from cds.mapping.tables import CodeRow, MappingTables
from cds.pipeline import ScoredCase, policy_of
from cds.scoring.engine import score_all
from cds.scoring.inputs import InputValue, parse_inputs
from cds.scoring.result import ScoreResult
from cds.scoring.scores import definitions
from cds.sources.record import PatientRecord
from cds.sources.resources import ServiceRequest
from cds.writeback.identity import (
    BAND_SYSTEM,
    DIGEST_EXTENSION,
    ENTERED_NOTE,
    ESTIMATE_EXTENSION,
    IDENTIFIER_SYSTEM,
    ITEM_SYSTEM,
    METHOD_SYSTEM,
    digest,
    full_url,
    resource_key,
)

Json = dict[str, Any]
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"

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

# Score id -> code of mappings/cto-lesion.codesystem.json.
SCORE_CODES = {
    "operator_cto": "operator-cto-score",
    "j_cto": "j-cto-score",
    "progress_cto": "progress-cto-score",
    "recharge": "recharge-score",
    "cl_score": "cl-score",
    "ora": "ora-score",
    "castle": "castle-score",
    "progress_complications": "progress-complications-score",
}
# Observation.derivedFrom targets in R4; other sources (Condition, Procedure, the order, the
# operator) are named by the Provenance's entities instead.
DERIVED_FROM_TYPES = frozenset(
    {"Observation", "DocumentReference", "ImagingStudy", "Media", "QuestionnaireResponse"}
)
_REFERENCE = re.compile(r"^(urn:uuid:[0-9a-f-]{36}|[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64})$")


@dataclass(frozen=True)
class SaveContext:
    """Who saves what, for which order, when: everything the builder needs besides the case."""

    patient_id: str
    order_ref: str
    body_site: Json | None
    user: str | None
    now: datetime


@dataclass(frozen=True)
class Planned:
    """One resource the server should hold after the save."""

    key: str
    what: str
    resource_type: str
    body: Json
    digest: str
    sources: tuple[str, ...] = ()
    """Every record resource it was computed from (Provenance.entity); derivedFrom holds the subset
    of types R4 allows there."""

    @property
    def full_url(self) -> str:
        return full_url(self.key)


def check_entered(raw: object) -> dict[str, InputValue]:
    """Canonical inputs (parse_inputs rules) that are lesion findings; null/missing = not entered."""
    parsed = parse_inputs(raw)
    issues = [
        InputIssue(
            (name,),
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
        raise InputError([InputIssue((), raw, "nothing_entered", "no lesion finding to save")])
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


def _coding(system: str, code: str, display: str | None = None) -> Json:
    out: Json = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


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
            _coding(tables.rules.local_system, _local_row(tables, name, "value", value).code)
        )
    if name in SEVERITY_INPUTS and value in CID_3716:
        codings.append(_coding(SNOMED, CID_3716[value]))
    if not codings:
        raise LookupError(f"{name}: no code for the value {value!r}")
    return {"valueCodeableConcept": {"coding": codings, "text": value}}


def _stamp(body: Json, what: str, key: str, sources: tuple[str, ...] = ()) -> Planned:
    """Digest the content, then add what does not count as content (digest, identifier)."""
    content_digest = digest([body, list(sources)] if sources else body)
    stamped = {
        "resourceType": body["resourceType"],
        # The tag repeats the key for servers without an identifier search on the type (sekmet
        # 0.1.1 RiskAssessment): `_tag` is a search every resource type has.
        "meta": {"tag": [{"system": IDENTIFIER_SYSTEM, "code": key}]},
        "extension": [{"url": DIGEST_EXTENSION, "valueString": content_digest}],
        "identifier": [{"system": IDENTIFIER_SYSTEM, "value": key}],
        **{k: v for k, v in body.items() if k != "resourceType"},
    }
    return Planned(key, what, body["resourceType"], stamped, content_digest, sources)


def _timed(planned: Planned, ctx: SaveContext, when: str, *, many: bool = True) -> Planned:
    """Add the time and the user: neither is content (saving the same values later changes nothing)."""
    body = dict(planned.body)
    body[when] = ctx.now.isoformat()
    if ctx.user:
        who = {"reference": ctx.user}
        body["performer"] = [who] if many else who
    return replace(planned, body=body)


def finding(tables: MappingTables, ctx: SaveContext, name: str, value: InputValue) -> Planned:
    row = _local_row(tables, name, "code", None)
    codings = [_coding(row.system, row.code)]
    if name in STANDARD_CODES:
        codings.append(_coding(*STANDARD_CODES[name]))
    body: Json = {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [_coding(OBSERVATION_CATEGORY, "imaging", "Imaging")]}],
        "code": {"coding": codings, "text": name},
        "subject": {"reference": f"Patient/{ctx.patient_id}"},
        "focus": [{"reference": ctx.order_ref}],
        **_finding_value(tables, name, value),
    }
    if ctx.body_site is not None:
        body["bodySite"] = ctx.body_site
    key = finding_key(ctx, name)
    return _timed(_stamp(body, f"finding {name}", key), ctx, "effectiveDateTime")


def _points(value: float, *, quantity: bool) -> Json:
    return (
        {"value": value, "unit": "{score}", "system": UCUM, "code": "{score}"} if quantity else {}
    )


def _score_value(score: ScoreResult, halves: bool) -> Json:
    if score.points is None:
        return {
            "valueRange": {
                "low": _points(score.min, quantity=True),
                "high": _points(score.max, quantity=True),
            }
        }
    if halves:
        return {"valueQuantity": _points(score.points, quantity=True)}
    return {"valueInteger": int(score.points)}


def derived_from(case: ScoredCase, inputs: tuple[str, ...]) -> list[str]:
    """Every resource the inputs came from, in input order, once each."""
    refs: dict[str, None] = {}
    for name in inputs:
        for source in case.mapping.inputs[name].sources:
            if _REFERENCE.match(source):
                refs[source] = None
    return list(refs)


def score_observation(
    tables: MappingTables,
    ctx: SaveContext,
    case: ScoredCase,
    score_id: str,
    inputs: tuple[str, ...],
) -> Planned:
    score = case.report.scores[score_id]
    halves = any(
        isinstance(item.points, float) and not item.points.is_integer() for item in score.items
    )
    body: Json = {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [_coding(OBSERVATION_CATEGORY, "survey", "Survey")]}],
        "code": {
            "coding": [_coding(tables.rules.local_system, SCORE_CODES[score_id])],
            "text": score.name,
        },
        "subject": {"reference": f"Patient/{ctx.patient_id}"},
        "focus": [{"reference": ctx.order_ref}],
        **_score_value(score, halves),
        "method": {
            "coding": [{"system": METHOD_SYSTEM, "code": score_id, "version": __version__}],
            "text": f"{score.name}, {score.citation} (cto-cds {__version__})",
        },
        "component": [
            {
                "code": {
                    "coding": [_coding(ITEM_SYSTEM, f"{score_id}.{item.id}", item.label)],
                    "text": item.label,
                },
                **(
                    {"valueBoolean": item.present}
                    if item.present is not None
                    else {"dataAbsentReason": {"coding": [_coding(ABSENT, "unknown")]}}
                ),
            }
            for item in score.items
        ],
    }
    if score.points is not None and score.band is not None:
        body["interpretation"] = [
            {"coding": [_coding(BAND_SYSTEM, f"{score_id}.{score.band}")], "text": score.band}
        ]
    refs = derived_from(case, inputs)
    allowed = [r for r in refs if r.startswith("urn:") or r.split("/")[0] in DERIVED_FROM_TYPES]
    if allowed:
        body["derivedFrom"] = [{"reference": ref} for ref in allowed]
    key = resource_key(ctx.patient_id, ctx.order_ref, f"score:{score_id}")
    planned = _stamp(body, f"score {score_id}", key, tuple(refs))
    return _timed(planned, ctx, "effectiveDateTime")


def risk_assessment(ctx: SaveContext, case: ScoredCase, basis: Planned) -> Planned | None:
    """The Operator-CTO published estimate for the known band (Xiao 2021, Table 4 counts)."""
    score = case.report.scores["operator_cto"]
    estimate = score.estimate
    if score.points is None or score.band is None or estimate is None:
        return None
    counts = (
        f"{estimate.successes} of {estimate.n}" if estimate.successes is not None else "no counts"
    )
    interval = (
        f"; 95% CI {estimate.ci95[0]:.3f}-{estimate.ci95[1]:.3f} (Wilson)" if estimate.ci95 else ""
    )
    body: Json = {
        "resourceType": "RiskAssessment",
        "status": "final",
        "subject": {"reference": f"Patient/{ctx.patient_id}"},
        "basedOn": {"reference": ctx.order_ref},
        "method": {
            "coding": [{"system": METHOD_SYSTEM, "code": "operator_cto", "version": __version__}],
            "text": f"{score.name}, {score.citation}",
        },
        "basis": [{"reference": basis.full_url}],
        "prediction": [
            {
                "outcome": {"text": score.outcome_label},
                "probabilityDecimal": round(estimate.proportion, 4),
                "rationale": f"{score.band} band: {counts}{interval}; {score.citation}. "
                f"{estimate.note}",
                "extension": [{"url": f"{ESTIMATE_EXTENSION}#n", "valueInteger": estimate.n}]
                if estimate.n is not None
                else [],
            }
        ],
    }
    if not body["prediction"][0]["extension"]:
        del body["prediction"][0]["extension"]
    key = resource_key(ctx.patient_id, ctx.order_ref, "risk:operator_cto")
    return _timed(_stamp(body, "risk operator_cto", key), ctx, "occurrenceDateTime", many=False)


def build_resources(
    tables: MappingTables,
    ctx: SaveContext,
    case: ScoredCase,
    entered: Mapping[str, InputValue],
) -> list[Planned]:
    """Findings first, then scores, then the risk assessment: the order a sequential write needs."""
    score_inputs = {d.id: d.inputs for d in definitions(policy_of(tables))}
    planned = [finding(tables, ctx, name, value) for name, value in entered.items()]
    scores = [
        score_observation(tables, ctx, case, score_id, score_inputs[score_id])
        for score_id in case.report.scores
        if score_id in SCORE_CODES
    ]
    planned += scores
    operator = next((p for p in scores if p.what == "score operator_cto"), None)
    risk = risk_assessment(ctx, case, operator) if operator else None
    if risk is not None:
        planned.append(risk)
    return planned


def validate_json(body: Json) -> None:
    """Validate with fhir.resources R4B; raises pydantic's ValidationError naming the element."""
    # Imported here: fhir.resources models are slow to import and only writes need them.
    from fhir.resources.R4B.observation import Observation
    from fhir.resources.R4B.provenance import Provenance
    from fhir.resources.R4B.riskassessment import RiskAssessment

    models: dict[str, Any] = {
        "Observation": Observation,
        "Provenance": Provenance,
        "RiskAssessment": RiskAssessment,
    }
    models[body["resourceType"]].model_validate(body)
