"""What the review page is rendered from: the record read with the session's access token (only from
`iss`), scored, or the inputs a card showed when opened from one (appContext); and what a Save
adds to it (`Form`: typed values, bad fields, the result).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cds.app.card_context import card_state
from cds.app.errors import SmartError
from cds.app.token import fhir_id, order_id
from cds.http.state import ServiceState
from cds.mapping.provenance import MappedInput
from cds.pipeline import policy_of, score_patient
from cds.scored_case import ScoredCase
from cds.scoring.engine import score_all
from cds.scoring.inputs import (
    parse_inputs,
)
from cds.scoring.result import ScoreReport
from cds.sources.fhir import FhirRestSource
from cds.sources.record import PatientRecord, RecordRequest
from cds.store.app_sessions import AppSessionRow


def _context_ids(context: dict[str, Any]) -> tuple[str, str | None]:
    """The launch's patient and order ids (checked at sign-in, cds/app/token.py; again here for a
    session stored before that check), or SmartError."""
    patient = context.get("patient")
    if not isinstance(patient, str) or not patient:
        raise SmartError(
            400,
            "No patient",
            "the launch gave no patient context; open the app from a patient's chart in the EHR",
        )
    items = context.get("fhirContext")
    try:
        fhir_id(patient)
        order = order_id(
            [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []
        )
    except ValueError:
        raise SmartError(
            502,
            "Launch context refused",
            "the EHR's patient or order id is not a FHIR id",
            relaunch=True,
        ) from None
    return patient, order


@dataclass(frozen=True)
class Loaded:
    """What the page is rendered from: the record read with the session's token, scored."""

    case: ScoredCase
    record: PatientRecord
    inputs: dict[str, MappedInput]
    report: ScoreReport
    note: str | None
    unread: tuple[str, ...] = ()
    """What the EHR did not answer completely, each naming its search and cause (no ids)."""


def record_request(row: AppSessionRow) -> RecordRequest:
    patient, order = _context_ids(row.context)
    return RecordRequest(patient_id=patient, order_id=order)


async def load(service: ServiceState, row: AppSessionRow, token: str) -> Loaded:
    """Read the record (only from `iss`, with the session's token) and score it; SmartError
    when the launch gave no patient."""
    source = FhirRestSource(row.iss, service.http, token=token)
    request = record_request(row)
    case, record = await score_patient(source, request, service.tables, datetime.now(UTC).date())
    secret = service.settings.app_context_secret.get_secret_value()
    await service.audit.flush()  # a card's handle is written behind its response: write it first
    card = await card_state(
        service.store,
        secret,
        row.context.get("appContext"),
        request.patient_id,
        case.mapping.order,
    )
    inputs = card.inputs if card.inputs is not None else case.mapping.inputs
    report = case.report
    if card.inputs is not None:
        values = {k: v.value for k, v in card.inputs.items()}
        report = score_all(parse_inputs(values), policy_of(service.tables))
    return Loaded(case, record, inputs, report, card.note, tuple(record.incomplete.values()))


@dataclass(frozen=True)
class Form:
    """A Save's outcome shown on the page: what was typed, bad fields, the save's result."""

    posted: Mapping[str, str] | None = None
    issues: Mapping[str, str] = field(default_factory=dict)
    notice: str = ""
    report: ScoreReport | None = None
