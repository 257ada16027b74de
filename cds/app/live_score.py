"""The live recompute (POST /app/api/score): the form's values typed as the inputs, checked by
`parse_inputs` and scored by the scoring engine (no FHIR access); the answer is the same fragments
the page was rendered with (score_html), so the page and the live update cannot disagree. A bad
value comes back naming the field and the value.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi.responses import JSONResponse, Response

from cds.app.score_html import comparators_html, result_html
from cds.errors import InputError, InputIssue
from cds.http.state import ServiceState
from cds.pipeline import policy_of
from cds.scoring.engine import score_all
from cds.scoring.inputs import (
    INPUT_SPECS,
    InputSpec,
    number_from_text,
    parse_inputs,
)
from cds.scoring.scores.operator_cto import OPERATOR_CTO


def _typed(spec: InputSpec, raw: object) -> object:
    """A form string as the input's type; a value that does not convert exactly is returned
    unchanged, so `parse_inputs` names it, as typed, with the field in its error."""
    if not isinstance(raw, str):
        return raw
    if raw == "":
        return None
    if spec.kind == "boolean":
        return {"true": True, "false": False}.get(raw, raw)
    if spec.kind in ("integer", "number"):
        number = number_from_text(spec, raw)
        return raw if number is None else number
    return raw


def typed_inputs(raw: Mapping[str, object]) -> dict[str, object]:
    """Form strings as the inputs' types (what `parse_inputs` then checks)."""
    return {k: _typed(INPUT_SPECS[k], v) if k in INPUT_SPECS else v for k, v in raw.items()}


def live_score(service: ServiceState, body: object) -> Response:
    """`{"inputs": {name: value}}` → the result fragments, or 400 naming each bad field."""
    raw = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(raw, dict):
        # The body itself when it is not an object ([] said "inputs …, got null" before).
        where, given = (("inputs",), raw) if isinstance(body, dict) else ((), body)
        issue = InputIssue(where, given, "not_an_object", "must be a JSON object")
        return _invalid(InputError([issue]))
    try:
        inputs = parse_inputs(typed_inputs(raw))
    except InputError as exc:
        return _invalid(exc)
    report = score_all(inputs, policy_of(service.tables))
    score = report.scores[OPERATOR_CTO.id]
    return JSONResponse(
        {
            "band": score.band,
            "points": score.points,
            "result": result_html(report),
            "comparators": comparators_html(report),
        },
        headers={"Cache-Control": "no-store"},
    )


def _invalid(exc: InputError) -> Response:
    issues = [{"field": i.field, "message": str(i)} for i in exc.issues]
    return JSONResponse({"error": "Invalid inputs", "issues": issues}, status_code=400)
