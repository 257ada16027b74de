"""Feedback items (CH-22) as table rows, and override reasons as summary keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cds.store.schemas import FeedbackIn

NO_REASON = "(no reason code)"


def feedback_row(
    service_id: str, item: FeedbackIn, known: set[str], received: datetime
) -> dict[str, Any]:
    """The `feedback` columns for one item; the reason Coding is copied out for GROUP BY."""
    reason = item.override_reason
    coding = reason.reason if reason is not None else None
    return {
        "service_id": service_id,
        "card_uuid": item.card,
        "outcome": item.outcome,
        "outcome_timestamp": item.outcome_timestamp,
        "accepted_suggestions": [s.model_dump() for s in item.accepted_suggestions or []],
        "override_reason": None
        if reason is None
        else reason.model_dump(mode="json", by_alias=True, exclude_none=True),
        "reason_system": coding.system if coding else None,
        "reason_code": coding.code if coding else None,
        "known_card": item.card in known,
        "received_at": received,
    }


def reason_key(system: str | None, code: str | None) -> str:
    """`system|code` (FHIR token syntax), or NO_REASON for an override with only a comment."""
    if code is None:
        return NO_REASON
    return f"{system or ''}|{code}"
