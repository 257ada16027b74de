"""The review page and the live-recompute answer (SMART app, issue 8 "The page").

The first view is rendered here, on the server, from the record read with the access token (only
from `iss`): readable with JavaScript off. The script (static/app.js) posts the form's values to
`/app/api/score`, which runs the scoring engine, no I/O (`parse_inputs` + `score_all`), and answers
the same fragments rendered by the same functions, so the page and the live update cannot disagree.

Unknown stays unknown: an input with no value shows **unknown** and an empty choice, never false.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from typing import Any

from fastapi.responses import JSONResponse, Response

from cds.app import scopes
from cds.app.card_context import card_state
from cds.app.chart import band_chart
from cds.app.errors import SmartError
from cds.app.pages import error_page, page
from cds.errors import InputError, InputIssue
from cds.http.state import ServiceState
from cds.mapping.case_labels import name_text
from cds.mapping.provenance import MappedInput
from cds.mapping.tables import MappingTables
from cds.pipeline import policy_of, score_patient
from cds.scored_case import ScoredCase
from cds.scoring.engine import score_all
from cds.scoring.inputs import (
    INPUT_SPECS,
    InputGroup,
    InputSpec,
    InputValue,
    inputs_in,
    parse_inputs,
)
from cds.scoring.result import ScoreReport, ScoreResult
from cds.scoring.scores.operator_cto import OPERATOR_CTO
from cds.sources.fhir import FhirRestSource
from cds.sources.record import PatientRecord, RecordRequest
from cds.store.app_sessions import AppSessionRow

GROUPS: tuple[tuple[InputGroup, str], ...] = (
    ("patient", "Patient history"),
    ("lesion", "Lesion findings"),
    ("operator", "Operator"),
)


def _num(x: float) -> str:
    return f"{x:g}"


def _points(score: ScoreResult | Any) -> str:
    if score.points is not None:
        return _num(score.points)
    return f"{_num(score.min)} to {_num(score.max)}"


def _band(score: ScoreResult | Any) -> str:
    if score.band:
        return str(score.band).replace("_", " ")
    return " or ".join(b.replace("_", " ") for b in score.bands) or "—"


def result_html(report: ScoreReport) -> str:
    """Operator-CTO first: points or range, band, estimate with n and CI, the expert operator."""
    score = report.scores[OPERATOR_CTO.id]
    rows = [
        f'<p class="headline"><span class="points">{escape(_points(score))} points</span> · '
        f'<span class="band" data-band="{escape(score.band or "")}">{escape(_band(score))}</span></p>'
    ]
    est = score.estimate
    if est is not None:
        text = f"{est.proportion * 100:.0f} % {escape(score.outcome_label)}"
        if est.n is not None:
            text += f" (n = {est.n}"
            if est.ci95 is not None:
                text += f", 95 % CI {est.ci95[0] * 100:.0f}–{est.ci95[1] * 100:.0f} %"
            text += ")"
        rows.append(f'<p class="estimate">{text}</p>')
    else:
        rows.append('<p class="estimate">No single estimate: complete the unknown inputs.</p>')
    for scenario in OPERATOR_CTO.scenarios:
        alt = score.scenarios.get(scenario.id)
        if alt is not None:
            rows.append(
                f'<p class="scenario">With {escape(scenario.label)}: '
                f"{escape(_points(alt))} points, {escape(_band(alt))}</p>"
            )
    if score.missing:
        names = ", ".join(escape(m) for m in score.missing)
        rows.append(f'<p class="missing">Unknown: {names}</p>')
    rows.append(band_chart(OPERATOR_CTO, score.band))
    rows.append(f'<p class="cite">{escape(score.citation)}</p>')
    return "".join(rows)


def comparators_html(report: ScoreReport) -> str:
    items = []
    for score_id, score in report.scores.items():
        if score_id == OPERATOR_CTO.id:
            continue
        items.append(
            f"<li><strong>{escape(score.name)}</strong> ({escape(score.outcome_label)}): "
            f"{escape(_points(score))} points, {escape(_band(score))}</li>"
        )
    return '<ul class="comparators">' + "".join(items) + "</ul>"


def _control(spec: InputSpec, value: InputValue | None, shown: str | None = None) -> str:
    """The field, `data-initial` = the record's value; `shown` = what was typed (kept on errors)."""
    name = escape(spec.name)
    current = _raw(value) if shown is None else shown
    attrs = (
        f'id="in-{name}" name="{name}" data-kind="{spec.kind}" data-initial="{escape(_raw(value))}"'
    )
    if spec.kind in ("boolean", "enum"):
        choices = ("true", "false") if spec.kind == "boolean" else spec.values
        options = ['<option value="">unknown</option>']
        for choice in choices:
            chosen = " selected" if current == choice else ""
            options.append(f'<option value="{escape(choice)}"{chosen}>{escape(choice)}</option>')
        return f"<select {attrs}>{''.join(options)}</select>"
    bounds = "".join(
        f' {k}="{_num(v)}"' for k, v in (("min", spec.ge), ("max", spec.le)) if v is not None
    )
    step = "1" if spec.kind == "integer" else "any"
    return (
        f'<input type="number" step="{step}"{bounds} {attrs} value="{escape(current)}" '
        'placeholder="unknown">'
    )


def _raw(value: InputValue | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return _num(value) if isinstance(value, float) else str(value)


def _dates(record: PatientRecord) -> dict[str, str]:
    """Resource reference → its clinical date, to show next to each source."""
    found: dict[str, str] = {}
    for resource in (*record.conditions, *record.procedures, *record.observations, *record.orders):
        for attr in (
            "effectiveDateTime",
            "performedDateTime",
            "onsetDateTime",
            "recordedDate",
            "authoredOn",
        ):
            when = getattr(resource, attr, None)
            if isinstance(when, str):
                found[resource.ref] = when[:10]
                break
    return found


def _source(mapped: MappedInput | None, dates: dict[str, str]) -> str:
    """Resource type and date of each source (many of one type: the count and the latest date)."""
    if mapped is None:
        return '<span class="source">not read</span>'
    by_type: dict[str, list[str]] = {}
    for ref in mapped.sources:
        by_type.setdefault(ref.split("/")[0], []).append(dates.get(ref, ""))
    parts = []
    for kind, when in by_type.items():
        latest = max(when)
        count = f" ×{len(when)}" if len(when) > 1 else ""
        parts.append(f"{kind}{count} {'latest ' if count and latest else ''}{latest}".strip())
    text = escape("; ".join(parts)) if parts else escape(mapped.rule)
    return f'<span class="source">{text} · <em>{escape(mapped.evidence)}</em></span>'


def inputs_html(
    inputs: dict[str, MappedInput],
    record: PatientRecord,
    posted: Mapping[str, str] | None = None,
    issues: Mapping[str, str] | None = None,
) -> str:
    """Every input grouped; `posted` (a Save's form) overrides the shown value, `issues` names
    the bad ones next to their field."""
    dates = _dates(record)
    sections = []
    for group, title in GROUPS:
        rows = []
        for name in inputs_in(group):
            spec = INPUT_SPECS[name]
            mapped = inputs.get(name)
            value = mapped.value if mapped is not None else None
            source_state = "unknown" if value is None else "from record"
            if mapped is not None and mapped.evidence == "not documented":
                source_state = "not documented"
            shown = None if posted is None else posted.get(name)
            state = source_state
            if shown is not None and shown != _raw(value):
                state = "entered" if shown else "unknown"
            problem = (issues or {}).get(name)
            error = (
                f'<span class="field-error" id="err-{escape(name)}" role="alert">{escape(problem)}</span>'
                if problem
                else ""
            )
            rows.append(
                f'<div class="input" data-state="{state}" data-source-state="{source_state}">'
                f'<label for="in-{escape(name)}">{escape(spec.meaning)}</label>'
                f"{_control(spec, value, shown)}"
                f'<span class="mark" aria-live="polite">{state}</span>{_source(mapped, dates)}'
                f"{error}</div>"
            )
        sections.append(f"<fieldset><legend>{escape(title)}</legend>{''.join(rows)}</fieldset>")
    return "".join(sections)


REGISTRY_FIELDS = {
    "operator_annual_cto_volume": "annual_cto_volume",
    "operator_cto_years": "cto_years",
    "operator_last_year_success_rate": "last_year_success_rate",
}


def operator_choice(tables: MappingTables) -> str:
    """What-if: another operator from the site registry fills the three experience inputs
    (static/app.js); without the script, or for anyone else, edit the three inputs below."""
    if not tables.operators:
        return ""
    options = ['<option value="">operator of the order</option>']
    for entry in tables.operators:
        name = entry.practitioner_id or f"NPI {entry.npi}"
        data = "".join(
            f' data-{field}="{_raw(getattr(entry, attr))}"'
            for field, attr in REGISTRY_FIELDS.items()
            if getattr(entry, attr) is not None
        )
        options.append(f'<option value="{escape(name)}"{data}>{escape(name)}</option>')
    return (
        '<p class="what-if"><label for="operator-choice">What if another operator: </label>'
        f'<select id="operator-choice">{"".join(options)}</select></p>'
    )


def _banner(record: PatientRecord, row: AppSessionRow) -> str:
    if not row.context.get("need_patient_banner", True) or record.patient is None:
        return ""
    patient = record.patient
    facts = [
        name_text(patient.name) or "",
        patient.gender or "",
        patient.birthDate or "",
        f"Patient {patient.id or ''}",
    ]
    return f'<header class="banner">{escape(" · ".join(f for f in facts if f))}</header>'


def _order_id(context: dict[str, Any]) -> str | None:
    for item in context.get("fhirContext") or []:
        ref = item.get("reference") if isinstance(item, dict) else None
        if isinstance(ref, str) and ref.startswith("ServiceRequest/"):
            return ref.split("/", 1)[1]
    return None


@dataclass(frozen=True)
class Loaded:
    """What the page is rendered from: the record read with the session's token, scored."""

    case: ScoredCase
    record: PatientRecord
    inputs: dict[str, MappedInput]
    report: ScoreReport
    note: str | None


def patient_of(row: AppSessionRow) -> str:
    patient = row.context.get("patient")
    if not isinstance(patient, str) or not patient:
        raise SmartError(400, "No patient", "the launch gave no patient context")
    return patient


def record_request(row: AppSessionRow) -> RecordRequest:
    return RecordRequest(patient_id=patient_of(row), order_id=_order_id(row.context))


async def load(service: ServiceState, row: AppSessionRow, token: str) -> Loaded:
    """Read the record (only from `iss`, with the session's token) and score it; SmartError
    when the launch gave no patient."""
    source = FhirRestSource(row.iss, service.http, token=token)
    request = record_request(row)
    case, record = await score_patient(source, request, service.tables, datetime.now(UTC).date())
    secret = service.settings.app_context_secret.get_secret_value()
    card = await card_state(
        service.store, secret, row.context.get("appContext"), request.patient_id
    )
    inputs = card.inputs if card.inputs is not None else case.mapping.inputs
    report = case.report
    if card.inputs is not None:
        values = {k: v.value for k, v in card.inputs.items()}
        report = score_all(parse_inputs(values), policy_of(service.tables))
    return Loaded(case, record, inputs, report, card.note)


@dataclass(frozen=True)
class Form:
    """A Save's outcome shown on the page: what was typed, bad fields, the save's result."""

    posted: Mapping[str, str] | None = None
    issues: Mapping[str, str] = field(default_factory=dict)
    notice: str = ""
    report: ScoreReport | None = None


def _save_controls(row: AppSessionRow, csrf: str | None) -> str:
    if not row.context.get("can_write") or csrf is None:
        return '<p class="readonly">Read-only: the EHR did not grant the write scopes needed to save.</p>'
    return (
        f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
        '<p class="save"><button type="submit" id="save">Save findings to the EHR</button> '
        '<span class="save-note">Saves the lesion findings and the scores; patient history and '
        "the operator what-if stay on this page.</span></p>" + _create_only_note(row)
    )


def _create_only_note(row: AppSessionRow) -> str:
    """Said up front: with a create-only grant, changing a finding saved before is refused."""
    missing = [t for t in ("Observation", "RiskAssessment") if t not in _updatable(row)]
    if not missing:
        return ""
    return (
        '<p class="create-only">Create only: the EHR did not grant updates of '
        f"{escape(' or '.join(missing))}, so a finding or score saved before cannot be changed "
        "from here.</p>"
    )


def _updatable(row: AppSessionRow) -> frozenset[str]:
    return scopes.may_update(str(row.context.get("scope") or ""))


def render(
    service: ServiceState,
    row: AppSessionRow,
    loaded: Loaded,
    *,
    csrf: str | None,
    form: Form | None = None,
    status: int = 200,
) -> Response:
    form = form or Form()
    mapping = loaded.case.mapping
    inputs = loaded.inputs
    report = form.report or loaded.report
    target = inputs.get("target_vessel")
    facts = [
        f"Order {mapping.order or 'not found'}",
        f"target vessel {target.value if target and target.value is not None else 'unknown'}",
        f"operator {mapping.operator or 'unknown'}",
    ]
    writable = bool(row.context.get("can_write")) and csrf is not None
    action = "/app/save" if writable else "/app/api/score"
    body = (
        _banner(loaded.record, row)
        + f'<p class="order">{escape(" · ".join(facts))}</p>'
        + (f'<p class="card-note">{escape(loaded.note)}</p>' if loaded.note else "")
        + form.notice
        + '<section aria-labelledby="h-result"><h1 id="h-result">Operator-CTO</h1>'
        + f'<div id="result">{result_html(report)}</div></section>'
        + f'<form id="inputs" method="post" action="{action}" novalidate>'
        + operator_choice(service.tables)
        + inputs_html(inputs, loaded.record, form.posted, form.issues)
        + _save_controls(row, csrf)
        + "</form>"
        + '<section aria-labelledby="h-comp"><h2 id="h-comp">Comparator scores</h2>'
        + f'<div id="comparators">{comparators_html(report)}</div></section>'
    )
    return page("Operator-CTO review", body, status)


async def review_page(
    service: ServiceState, row: AppSessionRow, token: str, csrf: str | None = None
) -> Response:
    try:
        loaded = await load(service, row, token)
    except SmartError as exc:
        return error_page(exc, row.iss)
    return render(service, row, loaded, csrf=csrf)


def _typed(spec: InputSpec, raw: object) -> object:
    """A form string as the input's type; a value that does not convert is returned unchanged,
    so `parse_inputs` names it with the field in its error."""
    if not isinstance(raw, str):
        return raw
    if raw == "":
        return None
    try:
        if spec.kind == "boolean":
            return {"true": True, "false": False}.get(raw, raw)
        if spec.kind == "integer":
            return int(raw)
        if spec.kind == "number":
            return float(raw)
    except ValueError:
        return raw
    return raw


def typed_inputs(raw: Mapping[str, object]) -> dict[str, object]:
    """Form strings as the inputs' types (what `parse_inputs` then checks)."""
    return {k: _typed(INPUT_SPECS[k], v) if k in INPUT_SPECS else v for k, v in raw.items()}


def live_score(service: ServiceState, body: object) -> Response:
    """`{"inputs": {name: value}}` → the result fragments, or 400 naming each bad field."""
    raw = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(raw, dict):
        issue = InputIssue(("inputs",), raw, "not_an_object", "must be a JSON object")
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
    issues = [{"field": ".".join(map(str, i.loc)), "message": str(i)} for i in exc.issues]
    return JSONResponse({"error": "Invalid inputs", "issues": issues}, status_code=400)
