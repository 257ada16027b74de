"""What goes into and comes out of the store, validated with pydantic v2.

Feedback comes in as the wire model `cds.cdshooks.feedback.FeedbackIn` (CH-22, validated there);
`FeedbackOut` is a stored item read back, `FeedbackResult` the counts of one batch.

`CardAuditIn` records a card as sent (CH-16) with everything needed to reproduce it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from cds.cdshooks.feedback import FeedbackIn, Outcome, OverrideReason, SuggestionRef
from cds.store.models import CARD_UUID_MAX, ID_MAX, REF_MAX
from cds.text_checks import StorableText as Text

__all__ = [
    "CardAuditIn",
    "CardAuditOut",
    "FeedbackIn",
    "FeedbackOut",
    "FeedbackResult",
    "HandleRow",
]


class FeedbackOut(BaseModel):
    """A stored feedback item, as quality officers read it back."""

    service_id: str
    card_uuid: str
    outcome: Outcome
    outcome_timestamp: datetime
    accepted_suggestions: list[SuggestionRef]
    override_reason: OverrideReason | None
    known_card: bool
    """False when the card had no audit row on receipt (served by another replica, or not ours)."""
    received_at: datetime


class FeedbackResult(BaseModel):
    """Counts for one batch: `stored + duplicate == len(items)`; `unknown_card` ⊆ `stored`."""

    stored: int = 0
    duplicate: int = 0
    unknown_card: int = 0


class CardAuditIn(BaseModel):
    """A card as sent (CH-16) and what produced it: inputs with provenance, scores, mappings.

    `created_at` defaults to the store's clock at `save_card`.
    """

    card_uuid: str = Field(min_length=1, max_length=CARD_UUID_MAX)
    service_id: str = Field(min_length=1, max_length=ID_MAX)
    hook: str = Field(min_length=1, max_length=ID_MAX)
    hook_instance: Text = Field(min_length=1, max_length=REF_MAX)
    created_at: AwareDatetime | None = None
    patient_ref: str = Field(min_length=1, max_length=REF_MAX)
    order_ref: str | None = Field(None, max_length=REF_MAX)
    operator_ref: str | None = Field(None, max_length=REF_MAX)
    index_date: date
    inputs: dict[str, Any]
    scores: dict[str, Any]
    card: dict[str, Any]
    mappings_version: str
    """The `MappingTables.version` that mapped the case: which table files made this card."""


HandleRow = dict[str, Any]
"""An `app_context_handle` row (`Store.new_handle`): handle, card_uuid, created_at, expires_at, state."""


class CardAuditOut(CardAuditIn):
    """A stored card audit row; `created_at` is always set."""

    model_config = ConfigDict(from_attributes=True)

    created_at: datetime
