"""Score Observations and the Operator-CTO RiskAssessment of a save (pure).

One Observation per score: points (a valueRange when unknown inputs leave a range, then no band),
one component per item, interpretation = band, method = score id and version, derivedFrom = the
Observations the inputs came from (every source, whatever its type, is in `Planned.sources` for the
Provenance). A RiskAssessment carries the published Operator-CTO estimate when the band is known;
when it is not, one saved before is withdrawn in place (no_estimate), never left as current.
"""

from __future__ import annotations

import re
from dataclasses import replace

from cds import __version__
from cds.mapping.tables import MappingTables
from cds.scored_case import ScoredCase
from cds.scoring.result import ScoreResult
from cds.writeback.identity import (
    BAND_SYSTEM,
    ESTIMATE_EXTENSION,
    ITEM_SYSTEM,
    METHOD_SYSTEM,
    resource_key,
)
from cds.writeback.resource import (
    ABSENT,
    OBSERVATION_CATEGORY,
    UCUM,
    Json,
    Planned,
    SaveContext,
    coding,
    stamp,
    timed,
)

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
        "category": [{"coding": [coding(OBSERVATION_CATEGORY, "survey", "Survey")]}],
        "code": {
            "coding": [coding(tables.rules.local_system, SCORE_CODES[score_id])],
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
                    "coding": [coding(ITEM_SYSTEM, f"{score_id}.{item.id}", item.label)],
                    "text": item.label,
                },
                **(
                    {"valueBoolean": item.present}
                    if item.present is not None
                    else {"dataAbsentReason": {"coding": [coding(ABSENT, "unknown")]}}
                ),
            }
            for item in score.items
        ],
    }
    if score.points is not None and score.band is not None:
        body["interpretation"] = [
            {"coding": [coding(BAND_SYSTEM, f"{score_id}.{score.band}")], "text": score.band}
        ]
    refs = derived_from(case, inputs)
    allowed = [r for r in refs if r.startswith("urn:") or r.split("/")[0] in DERIVED_FROM_TYPES]
    if allowed:
        body["derivedFrom"] = [{"reference": ref} for ref in allowed]
    key = resource_key(ctx.patient_id, ctx.order_ref, f"score:{score_id}")
    planned = stamp(body, f"score {score_id}", key, tuple(refs))
    return timed(planned, ctx, "effectiveDateTime")


NO_ESTIMATE = "the inputs no longer give an Operator-CTO band: no estimate"


def _risk_head(ctx: SaveContext, score: ScoreResult, basis: Planned) -> Json:
    return {
        "resourceType": "RiskAssessment",
        "subject": {"reference": f"Patient/{ctx.patient_id}"},
        "basedOn": {"reference": ctx.order_ref},
        "method": {
            "coding": [{"system": METHOD_SYSTEM, "code": "operator_cto", "version": __version__}],
            "text": f"{score.name}, {score.citation}",
        },
        "basis": [{"reference": basis.full_url}],
    }


def _risk_key(ctx: SaveContext) -> str:
    return resource_key(ctx.patient_id, ctx.order_ref, "risk:operator_cto")


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
        **_risk_head(ctx, score, basis),
        "status": "final",
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
    planned = stamp(body, "risk operator_cto", _risk_key(ctx))
    return timed(planned, ctx, "occurrenceDateTime", many=False)


def no_estimate(ctx: SaveContext, case: ScoredCase, basis: Planned) -> Planned:
    """The RiskAssessment that withdraws an estimate saved before, when the band is no longer
    known (the operator's experience became unknown, the score spans bands): the same resource,
    updated to say there is no estimate, so the old probability is not the order's current claim.
    Only written over one the server holds: a save that never had a band creates no RiskAssessment.

    `amended` (changed after it was final); no prediction (R4 allows none); `basis` = the score
    Observation that now has no band, the reason in `note`."""
    score = case.report.scores["operator_cto"]
    if score.points is None:
        why = f"{score.name} is {score.min:g} to {score.max:g} points, more than one band"
    elif score.band is None:
        why = f"{score.name} is {score.points:g} points, in no band"
    else:
        why = f"no published estimate for the {score.band} band"
    body: Json = {
        **_risk_head(ctx, score, basis),
        "status": "amended",
        "note": [{"text": f"{NO_ESTIMATE} ({why}); the estimate saved before is withdrawn."}],
    }
    planned = stamp(body, "risk operator_cto", _risk_key(ctx))
    return replace(timed(planned, ctx, "occurrenceDateTime", many=False), only_if_held=True)
