"""CH-22 feedback wire model: its own limits, which the store's columns can hold; one Coding."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cds.cdshooks import feedback
from cds.cdshooks.coding import Coding
from cds.cdshooks.feedback import FeedbackIn
from cds.store import models


def _item(**changes: object) -> dict[str, object]:
    item: dict[str, object] = {
        "card": "c",
        "outcome": "overridden",
        "overrideReason": {"reason": {"system": "s", "code": "x"}},
        "outcomeTimestamp": "2026-12-06T02:00:00+01:00",
    }
    return {**item, **changes}


def test_wire_limits_fit_the_store_columns() -> None:
    # The wire format sets its limits; the store must be able to keep whatever it accepts.
    assert feedback.ID_MAX <= models.CARD_UUID_MAX


def test_card_id_at_and_over_the_limit() -> None:
    longest = "x" * feedback.ID_MAX
    assert FeedbackIn.model_validate(_item(card=longest)).card == longest
    with pytest.raises(ValidationError, match="card"):
        FeedbackIn.model_validate(_item(card="x" * (feedback.ID_MAX + 1)))


def test_suggestion_id_over_the_limit_is_refused() -> None:
    item = _item(outcome="accepted", acceptedSuggestions=[{"id": "s" * (feedback.ID_MAX + 1)}])
    with pytest.raises(ValidationError, match="acceptedSuggestions"):
        FeedbackIn.model_validate(item)


def test_reason_is_the_shared_coding_and_tolerates_unknown_fields() -> None:
    parsed = FeedbackIn.model_validate(
        _item(overrideReason={"reason": {"system": "s", "code": "x", "userSelected": True}})
    )
    assert parsed.override_reason is not None
    assert parsed.override_reason.reason == Coding(system="s", code="x")
    assert parsed.outcome_timestamp.isoformat() == "2026-12-06T01:00:00+00:00"
