"""One hook call, from request to card: trigger → record (prefetch, then the FHIR server) → card.

The FHIR server is contacted only when it is on the allowlist; reads share one deadline for the whole
call (every round: the patient's, the operator's, a prefetch's continuation); data that could not be
read is named on the card with its true cause (cds/sources/reasons.py), and the scores show the
resulting range. An order, or a token, for another patient than `context.patientId` is refused (400)
before anything is read: one patient's order is never scored against another's record.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from cds.cdshooks.request import HookRequest
from cds.cdshooks.response import CdsResponse, dump
from cds.context.order import cto_pci_order, patient_id
from cds.context.services import ServiceDefinition
from cds.errors import ContextError, DataUnavailableError
from cds.http import about_page, app_context
from cds.http.observe import HookCall, band_of
from cds.http.request_checks import check_prefetch
from cds.http.state import ServiceState
from cds.output.cards import CardContext, build_card
from cds.pipeline import score_patient
from cds.sources.fhir import FetchLimits, FhirRestSource
from cds.sources.prefetch import PrefetchSource
from cds.sources.reasons import Problem
from cds.sources.record import RecordRequest, RecordSource
from cds.store.audit_queue import CardWrite
from cds.store.schemas import CardAuditIn

_TYPED_REFERENCE = re.compile(
    r"(?:^|/)([A-Z][A-Za-z]{0,63})/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?$"
)


def check_same_patient(order: Mapping[str, Any], patient: str, token_patient: str | None) -> None:
    """Refuse (ContextError → 400) an order whose subject, or a token whose patient, is another
    patient than `context.patientId` (pure). A subject that is not a typed reference (urn:uuid) is
    left to the order's own checks: only a visible mismatch is refused."""
    subject = order.get("subject")
    ref = subject.get("reference") if isinstance(subject, Mapping) else None
    match = _TYPED_REFERENCE.search(ref) if isinstance(ref, str) else None
    if match and (match[1], match[2]) != ("Patient", patient):
        what = f"{order.get('resourceType')}/{order.get('id')}.subject"
        raise ContextError(
            "context.draftOrders",
            f"{what} is {ref!r} but context.patientId is {patient!r}: not the same patient",
        )
    if token_patient is not None and token_patient != patient:
        raise ContextError(
            "fhirAuthorization.patient",
            f"is {token_patient!r} but context.patientId is {patient!r}: not the same patient",
        )


def _fallback(state: ServiceState, request: HookRequest, notes: list[str]) -> RecordSource | None:
    if not request.fhirServer:
        return None
    if not state.settings.fhir_server_allowed(request.fhirServer):
        # Never follow a URL from a request that is not on the allowlist: no outbound request.
        notes.append(f"the EHR's FHIR server: {Problem.NOT_ALLOWED.value} (not on the allowlist)")
        return None
    token = (
        request.fhirAuthorization.access_token.get_secret_value()
        if request.fhirAuthorization
        else None
    )
    limits = FetchLimits(deadline=state.settings.fhir_deadline)
    return FhirRestSource(request.fhirServer, state.http, token=token, limits=limits)


async def answer(
    state: ServiceState,
    service: ServiceDefinition,
    request: HookRequest,
    today: date | None = None,
    observed: HookCall | None = None,
) -> dict[str, Any]:
    """The response body, JSON-ready (CH-01): `{"cards": []}` for any other order."""
    order = cto_pci_order(request.hook, request.context, state.is_cto_pci)
    if order is None:
        return dump(CdsResponse(cards=[]))  # not a CTO-PCI: nothing to say, nothing read
    pid = patient_id(request.context)
    auth = request.fhirAuthorization
    check_same_patient(order, pid, auth.patient if auth else None)
    check_prefetch(request)  # read from here on (not for other orders: cds/http/request_checks.py)
    notes: list[str] = []
    fallback = _fallback(state, request, notes)
    no_fallback = Problem.NOT_ALLOWED if request.fhirServer and not fallback else Problem.NO_SERVER
    source = PrefetchSource(request.prefetch, fallback, no_fallback=no_fallback)
    today = today or datetime.now(UTC).date()
    case, record = await score_patient(
        source, RecordRequest(patient_id=pid, order=order), state.tables, today
    )
    if record.patient is None:
        why = record.incomplete.get("patient", Problem.NO_SERVER.value)
        raise DataUnavailableError(
            "prefetch.patient",
            f"the Patient could not be read: {why}; {' '.join(notes)}".strip("; "),
        )
    if observed is not None:
        observed.band = band_of(case)
    unread = notes + list(record.incomplete.values())  # each names its search and its cause
    card_uuid = str(uuid.uuid4())
    contract = case.contract()
    # The appContext handle is written behind the response with the card's audit row (one queued
    # write, cds/store/audit_queue.py): waiting for its own INSERT cost ≈ 2 ms of CPU per call.
    # It holds what the app restores (the inputs as shown, cds/app/card_context.py), not the
    # scores: those are in the audit row already (CH-16), and were 73 % of the handle's JSON.
    handle = state.store.new_handle(
        card_uuid,
        {
            "patient": pid,
            "order": case.mapping.order,
            "hookInstance": request.hookInstance,
            "fhirServer": request.fhirServer,
            "case": {"inputs": contract["inputs"], "context": contract["context"]},
        },
        timedelta(minutes=state.settings.app_context_ttl_minutes),
    )
    secret = state.settings.app_context_secret.get_secret_value()
    card = build_card(
        case,
        CardContext(
            card_uuid=card_uuid,
            local_system=state.tables.rules.local_system,
            app_launch_url=f"{state.settings.public_base_url}/app/launch",
            app_context=app_context.sign(secret, handle["handle"]),
            source_url=state.settings.public_base_url + about_page.PATH,
            referral=True,
            unread=unread,
            order_ref=case.mapping.order,
            patient_ref=f"Patient/{pid}",
        ),
    )
    # Dumped once, for the response and the audit row alike (the audit row is the card as sent).
    card_json = dump(card)
    # Written behind the response, in batches; never lost (cds/store/audit_queue.py).
    audit = CardAuditIn(
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
        card=card_json,
        mappings_version=state.tables.version,
    )
    await state.audit.submit(CardWrite(audit, handle))
    return {"cards": [card_json]}
