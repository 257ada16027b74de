"""One hook call, from request to card: trigger → record (prefetch, then the FHIR server) → card.

The FHIR server is contacted only when it is on the allowlist; reads share one deadline; data that
could not be read in time is named on the card, and the scores show the resulting range.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from cds.context.order import cto_pci_order, patient_id
from cds.context.request import HookRequest
from cds.context.services import ServiceDefinition
from cds.errors import DataUnavailableError
from cds.http import about_page, app_context
from cds.http.state import ServiceState
from cds.output.cards import CardContext, CdsResponse, build_card, dump
from cds.pipeline import score_patient
from cds.sources.fhir import FetchLimits, FhirRestSource
from cds.sources.prefetch import PrefetchSource
from cds.sources.record import RecordRequest, RecordSource
from cds.store.engine import DATABASE_ERRORS
from cds.store.schemas import CardAuditIn

PAPER = "https://doi.org/10.1155/2021/9988943"


def _fallback(state: ServiceState, request: HookRequest, notes: list[str]) -> RecordSource | None:
    if not request.fhirServer:
        return None
    if not state.settings.fhir_server_allowed(request.fhirServer):
        # Never follow a URL from a request that is not on the allowlist: no outbound request.
        notes.append("the EHR's FHIR server is not on this service's allowlist: not queried")
        return None
    token = (
        request.fhirAuthorization.access_token.get_secret_value()
        if request.fhirAuthorization
        else None
    )
    limits = FetchLimits(deadline=state.settings.fhir_deadline)
    return FhirRestSource(request.fhirServer, state.http, token=token, limits=limits)


async def answer(
    state: ServiceState, service: ServiceDefinition, request: HookRequest, today: date | None = None
) -> CdsResponse:
    order = cto_pci_order(request.hook, request.context, state.tables)
    if order is None:
        return CdsResponse(cards=[])  # not a CTO-PCI: nothing to say, nothing read
    pid = patient_id(request.context)
    notes: list[str] = []
    source = PrefetchSource(request.prefetch, _fallback(state, request, notes))
    today = today or datetime.now(UTC).date()
    case, record = await score_patient(
        source, RecordRequest(patient_id=pid, order=order), state.tables, today
    )
    if record.patient is None:
        why = record.incomplete.get("patient", "not prefetched and no FHIR server")
        raise DataUnavailableError(
            "prefetch.patient",
            f"the Patient could not be read: {why}; {' '.join(notes)}".strip("; "),
        )
    unread = notes + [f"{key}: {why}" for key, why in record.incomplete.items()]
    card_uuid = str(uuid.uuid4())
    contract = case.contract()
    handle: str | None = None
    try:  # the card matters more than its audit trail: a database outage costs only the app link
        handle = await state.store.create_handle(
            card_uuid,
            {
                "patient": pid,
                "order": case.mapping.order,
                "hookInstance": request.hookInstance,
                "fhirServer": request.fhirServer,
                "case": contract,
            },
            timedelta(minutes=state.settings.app_context_ttl_minutes),
        )
    except DATABASE_ERRORS as exc:
        state.audit_failed("create_handle", exc)
    secret = state.settings.app_context_secret.get_secret_value()
    card = build_card(
        case,
        CardContext(
            card_uuid=card_uuid,
            app_launch_url=f"{state.settings.public_base_url}/app/launch",
            app_context=app_context.sign(secret, handle) if handle else None,
            source_url=state.settings.public_base_url + about_page.PATH,
            referral=True,
            unread=unread,
            order_ref=case.mapping.order,
            patient_ref=f"Patient/{pid}",
        ),
    )
    response = CdsResponse(cards=[card])
    try:
        await state.store.save_card(
            CardAuditIn(
                card_uuid=card_uuid,
                service_id=service.id,
                hook=request.hook,
                hook_instance=request.hookInstance,
                patient_ref=f"Patient/{pid}",
                order_ref=case.mapping.order,
                operator_ref=case.mapping.operator,
                index_date=case.mapping.index_date,
                inputs=contract["inputs"],
                scores=contract["scores"],
                card=dump(card),
                mappings_version=",".join(state.tables.sources),
            )
        )
    except DATABASE_ERRORS as exc:
        state.audit_failed("save_card", exc)
    return response
