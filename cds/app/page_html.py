"""The review page (SMART app, issue 8 "The page"), rendered on the server: readable with JavaScript
off, no CDN. The patient banner, the order, the result fragments (score_html), the inputs form
(inputs_html) and the Save controls: read-only without the write scopes, a create-only note
without the update scopes.
"""

from __future__ import annotations

from html import escape

from fastapi.responses import Response

from cds.app import scopes
from cds.app.errors import SmartError
from cds.app.inputs_html import inputs_html, operator_choice
from cds.app.page_model import Form, Loaded, load
from cds.app.pages import error_page, page, relaunch_iss
from cds.app.score_html import comparators_html, result_html
from cds.http.state import ServiceState
from cds.mapping.case_labels import name_text
from cds.sources.record import PatientRecord
from cds.store.app_sessions import AppSessionRow


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


def _unread(unread: tuple[str, ...]) -> str:
    """What the EHR did not answer (the card's "Not read completely"): its inputs show as unknown
    or not documented, which is not the same as absent from the record."""
    if not unread:
        return ""
    return (
        '<p class="unread" role="alert"><strong>Not read completely</strong> (inputs drawn from '
        "these data may be missing or shown as unknown or not documented): "
        f"{escape('; '.join(unread))}</p>"
    )


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
        + _unread(loaded.unread)
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
        return error_page(exc, relaunch_iss(row))
    if loaded.record.patient is None:
        # Every input would show as unknown, as if nothing were documented (a revoked token, a
        # server down): the record was not read, as the hook says (a 412, not a card). Save
        # keeps its own path: the write path refuses an incomplete record, the form kept.
        why = loaded.record.incomplete.get("patient", "not on the server")
        unread = SmartError(
            502,
            "Record not read",
            f"the patient's record could not be read from the EHR ({why}); "
            "try again, or launch the app again from the patient's chart",
            relaunch=True,
        )
        return error_page(unread, relaunch_iss(row))
    return render(service, row, loaded, csrf=csrf)
