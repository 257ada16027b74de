"""The three CDS Hooks routes (CH-03, CH-07, CH-22), the probes and the score's page.

Each delegates, none holds logic. `/healthz` (the process answers) and `/readyz` (database reachable
on a schema this release runs on; it names the mapping tables' version) are for orchestrators: no
auth, no PHI, not in the OpenAPI document.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, HTTPException
from fastapi.responses import HTMLResponse, JSONResponse, Response

from cds import metrics
from cds.cdshooks.feedback import FeedbackBatch
from cds.cdshooks.request import HookRequest
from cds.errors import ContextError
from cds.http import about_page, hook_call
from cds.http.deps import Client, State
from cds.http.errors import operation_outcome
from cds.http.fast_json import FastJSONResponse, FastRoute
from cds.http.observe import HookCall
from cds.http.request_checks import check_hook_request

router = APIRouter(route_class=FastRoute)  # bodies parsed by orjson (cds/http/fast_json.py)


@router.get("/cds-services", summary="Discovery: the services this CDS service offers (CH-03)")
async def discovery(state: State, client: Client) -> dict[str, Any]:
    return {"services": [service.discovery() for service in state.services]}


@router.post(
    "/cds-services/{service_id}",
    summary="Call a service for order-select or order-sign (CH-07, CH-15)",
    responses={400: {}, 401: {}, 404: {}, 412: {}},
)
async def call_service(
    service_id: str, request: HookRequest, state: State, client: Client
) -> JSONResponse:
    if state.service(service_id) is None:
        raise HTTPException(404, f"no service {service_id!r}")
    service = state.service(service_id, request.hook)
    if service is None:
        raise ContextError("hook", f"service {service_id!r} does not answer {request.hook!r}")
    with HookCall(service.hook, request.hookInstance) as call:
        check_hook_request(request)
        body = await hook_call.answer(state, service, request, observed=call)
        call.cards = len(body["cards"])
    return FastJSONResponse(body)


@router.post(
    "/cds-services/{service_id}/feedback",
    summary="Feedback on cards: accepted or overridden (CH-22)",
    responses={400: {}, 401: {}, 404: {}},
)
async def feedback(
    service_id: str,
    state: State,
    client: Client,
    body: FeedbackBatch = Body(..., examples=[{"feedback": []}]),  # noqa: B008
) -> JSONResponse:
    if state.service(service_id) is None:
        raise HTTPException(404, f"no service {service_id!r}")
    items = body.feedback
    if items is None:
        raise ContextError("feedback", "is required")
    await state.audit.flush()  # feedback on a card just sent finds its audit row
    result = await state.store.save_feedback(service_id, items)
    for item in items:
        metrics.FEEDBACK.labels(item.outcome).inc()
    return FastJSONResponse(result.model_dump(mode="json"))


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", include_in_schema=False)
async def readyz(state: State) -> Response:
    # The mapping tables need no check here: a process whose tables fail to load never starts
    # serving (`create_app` raises, `cto-cds serve` exits 2), and they never change after.
    why = await state.store.ready()
    if why is not None:
        response = operation_outcome(503, "transient", f"not ready: {why}")
        response.headers["Retry-After"] = "5"
        return response
    return JSONResponse(
        {
            "status": "ready",
            "mappings": state.tables.version,
            "audit_failures": state.audit_failures,
        }
    )


_ABOUT = about_page.render()


@router.get(about_page.PATH, include_in_schema=False, response_class=HTMLResponse)
async def about_operator_cto() -> HTMLResponse:
    """What the card's source link opens: the score explained for clinicians."""
    return HTMLResponse(_ABOUT, headers={"Cache-Control": "public, max-age=3600"})
