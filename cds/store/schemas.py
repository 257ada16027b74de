"""What goes into and comes out of the store, validated with pydantic v2.

`FeedbackIn` is the CH-22 feedback item as the EHR sends it (camelCase aliases); a
`pydantic.ValidationError` from it is the HTTP layer's 400. The CH-20 invariants are enforced here:
outcome ∈ {accepted, overridden}; accepted ⇒ acceptedSuggestions; an overrideReason carries a
`reason` or a `userComment`. `outcomeTimestamp` must be an RFC 3339 string with an offset; it is
normalised to UTC, so the same instant written two ways is one feedback item.

`CardAuditIn` records a card as sent (CH-16) with everything needed to reproduce it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from cds.store.models import CARD_UUID_MAX, ID_MAX, REF_MAX
from cds.store.text_checks import StorableText as Text
from cds.store.text_checks import utc_instant

Outcome = Literal["accepted", "overridden"]


def _utc(value: datetime) -> datetime:
    return utc_instant(value)


class Coding(BaseModel):
    """A FHIR Coding; the sandbox sends only `system` and `code` (CH-22)."""

    model_config = ConfigDict(extra="ignore")

    system: Text | None = None
    version: Text | None = None
    code: Text | None = None
    display: Text | None = None


class OverrideReason(BaseModel):
    """`{reason?: Coding, userComment?: string}`, at least one of the two (CH-20)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    reason: Coding | None = None
    user_comment: Text | None = Field(None, alias="userComment")

    @model_validator(mode="after")
    def _reason_or_comment(self) -> OverrideReason:
        if self.reason is None and not self.user_comment:
            raise ValueError("overrideReason needs a reason or a userComment")
        return self


class SuggestionRef(BaseModel):
    """`{id: suggestion.uuid}` in `acceptedSuggestions`."""

    model_config = ConfigDict(extra="ignore")

    id: Text = Field(min_length=1, max_length=CARD_UUID_MAX)


class FeedbackIn(BaseModel):
    """One item of `{"feedback": [...]}` (CH-22)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    card: Text = Field(min_length=1, max_length=CARD_UUID_MAX)
    outcome: Outcome
    accepted_suggestions: list[SuggestionRef] | None = Field(None, alias="acceptedSuggestions")
    override_reason: OverrideReason | None = Field(None, alias="overrideReason")
    outcome_timestamp: AwareDatetime = Field(alias="outcomeTimestamp")

    @field_validator("outcome_timestamp", mode="before")
    @classmethod
    def _rfc3339_string(cls, value: object) -> object:
        # Lax pydantic would also take numbers (epoch seconds); CH-22 says an RFC 3339 string.
        if not isinstance(value, str | datetime):
            raise ValueError("outcomeTimestamp must be an RFC 3339 date-time string")
        return value

    @field_validator("outcome_timestamp")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return _utc(value)

    @model_validator(mode="after")
    def _accepted_names_suggestions(self) -> FeedbackIn:
        if self.outcome == "accepted" and not self.accepted_suggestions:
            raise ValueError(
                "acceptedSuggestions is required (one or more) when outcome is accepted"
            )
        return self


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


class CardAuditOut(CardAuditIn):
    """A stored card audit row; `created_at` is always set."""

    model_config = ConfigDict(from_attributes=True)

    created_at: datetime
