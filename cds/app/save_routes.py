"""Save (POST /app/save): the form's findings and the scores written back with the session's token
(issue 8), each refusal with its own page (docs/smart-app.md "Save").
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import Response

from cds.app import app_state, pages, scopes, session
from cds.app import save as save_form
from cds.app.active_session import active
from cds.app.app_state import service_of
from cds.app.errors import SmartError
from cds.app.live_score import typed_inputs
from cds.app.page_html import render
from cds.app.page_model import Form, load, record_request
from cds.app.page_routes import csrf_of, secret_of
from cds.app.pages import error_page
from cds.errors import InputError, UpdateNotGrantedError, WriteBackError
from cds.http.state import ServiceState
from cds.pipeline import policy_of
from cds.scoring.engine import score_all
from cds.scoring.inputs import parse_inputs
from cds.sources.fhir import FetchLimits, FhirRestSource
from cds.store.app_sessions import AppSessionRow
from cds.writeback.send import FhirWriter
from cds.writeback.send import save as write_back

log = logging.getLogger(__name__)

router = APIRouter(prefix="/app", include_in_schema=False)


@router.post("/save")
async def save_findings(request: Request) -> Response:
    """Save: the form's findings and the scores, written back with the session's token (issue 8).

    Checks in order, each with its own page: the session (401, relaunch), the anti-forgery token
    (403), the write scopes (403), one save of the session at a time on any replica (409), the
    inputs (400, typed values kept), an update the grant does not allow (403, nothing written, the
    resources listed), the FHIR server (502, the one-line error naming the resource, the form kept).
    """
    service = service_of(request)
    body = await request.body()
    if len(body) > save_form.MAX_FORM_BYTES:
        return error_page(SmartError(413, "Save refused", "the form is too large"))
    try:
        row, token = await active(request)
    except SmartError as exc:
        return error_page(exc, None)
    try:
        form = save_form.parse_form(body)
    except ValueError as exc:
        twice = SmartError(400, "Save refused", f"{exc}: reload the page and save again")
        return error_page(twice, pages.relaunch_iss(row))
    if not save_form.csrf_ok(
        secret_of(request), request.cookies.get(session.COOKIE), form.get(save_form.CSRF_FIELD)
    ):
        refused = SmartError(
            403,
            "Save refused",
            "the form's anti-forgery token does not match this browser's session (the app "
            "was opened again since, maybe for another patient): open the app from this "
            "patient's chart and save again",
        )
        return error_page(refused, pages.relaunch_iss(row))
    if not row.context.get("can_write"):
        read_only = SmartError(
            403, "Read-only", "the EHR did not grant the write scopes needed to save"
        )
        return error_page(read_only, pages.relaunch_iss(row))
    async with save_form.one_save_per_session(service.store, row.session_hash) as mine:
        if not mine:
            busy = SmartError(409, "Save in progress", "a save from this session is still running")
            return error_page(busy, pages.relaunch_iss(row))
        return await _save(service, row, token, form, csrf_of(request))


async def _save(
    service: ServiceState,
    row: AppSessionRow,
    token: str,
    form: dict[str, str],
    csrf: str | None,
) -> Response:
    posted = save_form.posted_inputs(form)
    try:
        loaded = await load(service, row, token)
    except SmartError as exc:
        return error_page(exc, pages.relaunch_iss(row))
    try:
        values = parse_inputs(typed_inputs(posted))
    except InputError as exc:
        issues = save_form.issues_by_field(exc)
        shown = Form(
            posted=posted,
            issues=issues,
            notice=save_form.notice_html("save-error", "Not saved: " + "; ".join(issues.values())),
        )
        return render(service, row, loaded, csrf=csrf, form=shown, status=400)
    report = score_all(values, policy_of(service.tables))
    entered = save_form.findings_to_save(
        values, loaded.case.mapping.inputs, save_form.saved_before(loaded.record)
    )
    if not entered:
        nothing = save_form.notice_html(
            "save-note", "Nothing to save: no lesion finding was entered or changed."
        )
        shown = Form(posted=posted, notice=nothing, report=report)
        return render(service, row, loaded, csrf=csrf, form=shown)
    # A save needs the whole record and is not on the hook's 2 s budget.
    limits = FetchLimits(timeout=10.0, deadline=60.0)
    request = record_request(row)
    source = FhirRestSource(row.iss, service.http, token=token, limits=limits)
    redact = tuple(i for i in (request.patient_id, request.order_id) if i)
    writer = FhirWriter(row.iss, service.http, token=token, redact_ids=redact)
    try:
        result = await write_back(
            source,
            writer,
            service.tables,
            request,
            entered,
            user=save_form.performer(row.context.get("fhirUser")),
            now=app_state.utc_now().replace(microsecond=0),
            updatable=scopes.may_update(str(row.context.get("scope") or "")),
        )
    except UpdateNotGrantedError as exc:
        refused = Form(posted=posted, notice=save_form.update_refused_html(exc), report=report)
        return render(service, row, loaded, csrf=csrf, form=refused, status=403)
    except (WriteBackError, InputError) as exc:
        log.info("app save refused by the FHIR server: %s", type(exc).__name__)
        failed = save_form.notice_html("save-error", f"Not saved: {exc}")
        shown = Form(posted=posted, notice=failed, report=report)
        return render(service, row, loaded, csrf=csrf, form=shown, status=502)
    done = Form(posted=posted, notice=save_form.result_html(result), report=report)
    return render(service, row, loaded, csrf=csrf, form=done)
