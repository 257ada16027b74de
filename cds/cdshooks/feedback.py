"""One CDS Hooks feedback item (docs/spec/cds-hooks-smart.md CH-22), validated at the edge.

A `pydantic.ValidationError` from `FeedbackIn` is the HTTP layer's 400. The CH-20 invariants are
enforced here: outcome ∈ {accepted, overridden}; accepted ⇒ acceptedSuggestions; an overrideReason
carries a `reason` or a `userComment`. `outcomeTimestamp` must be an RFC 3339 string with an offset;
it is normalised to UTC, so the same instant written two ways is one feedback item; an instant past
year 9999 in UTC, NUL, other control characters and lone surrogates are refused (cds/text_checks.py). Unknown fields
are ignored (CH-02).

The length limits are the wire format's own: a card and a suggestion are named by the `uuid` this
service gave them (36 characters); ids up to `ID_MAX` are accepted so that another service's or a
test client's ids are stored rather than refused. The store checks its columns against these.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from cds.cdshooks.coding import Coding
from cds.text_checks import StorableText as Text
from cds.text_checks import utc_instant

Outcome = Literal["accepted", "overridden"]

ID_MAX = 128
"""Longest `card` and `acceptedSuggestions[].id` accepted (a UUID is 36 characters)."""


class OverrideReason(BaseModel):
    """`{reason?: Coding, userComment?: string}`, at least one of the two (CH-20, CH-22)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    reason: Coding | None = None
    user_comment: Text | None = Field(None, alias="userComment")

    @model_validator(mode="after")
    def _reason_or_comment(self) -> OverrideReason:
        if self.reason is None and not self.user_comment:
            raise ValueError("overrideReason needs a reason or a userComment")
        return self


class SuggestionRef(BaseModel):
    """`{id: suggestion.uuid}` in `acceptedSuggestions` (CH-22)."""

    model_config = ConfigDict(extra="ignore")

    id: Text = Field(min_length=1, max_length=ID_MAX)


class FeedbackIn(BaseModel):
    """One item of `{"feedback": [...]}` (CH-22)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    card: Text = Field(min_length=1, max_length=ID_MAX)
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
        return utc_instant(value)

    @model_validator(mode="after")
    def _accepted_names_suggestions(self) -> FeedbackIn:
        if self.outcome == "accepted" and not self.accepted_suggestions:
            raise ValueError(
                "acceptedSuggestions is required (one or more) when outcome is accepted"
            )
        return self


class FeedbackBatch(BaseModel):
    """The request body, `{"feedback": [...]}` (CH-22); its other fields, an `extension` object
    say, are ignored (CH-02). A missing `feedback` is left to the route to name."""

    model_config = ConfigDict(extra="ignore")

    feedback: list[FeedbackIn] | None = None
