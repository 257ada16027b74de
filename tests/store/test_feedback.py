"""Feedback (CH-22): validated per CH-20, stored once per (card, outcome, timestamp), summarised."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from cds.store import FeedbackIn, Store
from tests.store.conftest import T0, card_audit

pytestmark = pytest.mark.anyio

SYSTEM = "http://example.org/override-reasons"


def item(
    card: str, outcome: str = "accepted", when: str = "2026-03-01T12:01:00Z", **more: Any
) -> FeedbackIn:
    body: dict[str, Any] = {"card": card, "outcome": outcome, "outcomeTimestamp": when, **more}
    if outcome == "accepted" and "acceptedSuggestions" not in more:
        body["acceptedSuggestions"] = [{"id": "s-1"}]
    return FeedbackIn.model_validate(body)


def overridden(card: str, code: str | None, when: str, comment: str | None = None) -> FeedbackIn:
    reason: dict[str, Any] = {}
    if code is not None:
        reason["reason"] = {"system": SYSTEM, "code": code}  # the sandbox sends no display
    if comment is not None:
        reason["userComment"] = comment
    return item(card, "overridden", when, overrideReason=reason)


@pytest.fixture
async def card(store: Store) -> str:
    audit = card_audit()
    await store.save_card(audit)
    return audit.card_uuid


async def test_duplicates_in_a_batch_and_repeated_batches(store: Store, card: str) -> None:
    batch = [
        item(card),
        item(card),
        item(card, when="2026-03-01T13:01:00+01:00"),
        item(card, when="2026-03-01T12:02:00Z"),
    ]
    # 13:01+01:00 is 12:01Z: the same instant written another way is the same item.
    first = await store.save_feedback("operator-cto", batch)
    assert (first.stored, first.duplicate, first.unknown_card) == (2, 2, 0)
    again = await store.save_feedback("operator-cto", batch)
    assert (again.stored, again.duplicate) == (0, 4)
    stored = await store.feedback_for(card)
    assert [f.outcome_timestamp for f in stored] == [
        datetime(2026, 3, 1, 12, 1, tzinfo=UTC),
        datetime(2026, 3, 1, 12, 2, tzinfo=UTC),
    ]
    assert all(f.known_card and f.received_at == T0 for f in stored)
    assert stored[0].accepted_suggestions[0].id == "s-1"


async def test_same_card_and_time_but_other_outcome_is_another_item(
    store: Store, card: str
) -> None:
    result = await store.save_feedback(
        "operator-cto", [item(card), overridden(card, "too-risky", "2026-03-01T12:01:00Z")]
    )
    assert (result.stored, result.duplicate) == (2, 0)


async def test_an_empty_batch_stores_nothing(store: Store) -> None:
    result = await store.save_feedback("operator-cto", [])
    assert (result.stored, result.duplicate, result.unknown_card) == (0, 0, 0)


async def test_overridden_with_reason_and_comment(store: Store, card: str) -> None:
    await store.save_feedback(
        "operator-cto",
        [overridden(card, "too-risky", "2026-03-01T12:05:00.123456Z", "Ünïcødé ≥ ok")],
    )
    (got,) = await store.feedback_for(card)
    assert got.outcome == "overridden"
    assert got.accepted_suggestions == []
    assert got.override_reason is not None
    assert got.override_reason.reason is not None
    assert (got.override_reason.reason.system, got.override_reason.reason.code) == (
        SYSTEM,
        "too-risky",
    )
    assert got.override_reason.user_comment == "Ünïcødé ≥ ok"
    assert got.outcome_timestamp == datetime(2026, 3, 1, 12, 5, 0, 123456, tzinfo=UTC)


async def test_feedback_on_an_unknown_card_is_stored_and_flagged(store: Store) -> None:
    stray = str(uuid.uuid4())
    result = await store.save_feedback("operator-cto", [item(stray), item(stray)])
    assert (result.stored, result.duplicate, result.unknown_card) == (1, 1, 1)
    (got,) = await store.feedback_for(stray)
    assert got.known_card is False


async def test_summary_for_quality_officers(store: Store, card: str) -> None:
    other_service = str(uuid.uuid4())
    await store.save_feedback(
        "operator-cto",
        [
            item(card),
            overridden(card, "too-risky", "2026-03-01T12:02:00Z"),
            overridden(card, "too-risky", "2026-03-01T12:03:00Z"),
            overridden(card, "patient-preference", "2026-03-01T12:04:00Z"),
            overridden(card, None, "2026-03-01T12:05:00Z", comment="free text only"),
            item(str(uuid.uuid4())),
        ],
    )
    await store.save_feedback(other_service, [item(card, when="2026-03-01T14:00:00Z")])
    report = await store.feedback_report("operator-cto")  # cds/store/feedback_report.py
    # 6 items: 5 on the card (the other service's item not among them), 1 on an unknown card.
    assert (report.accepted, report.overridden, report.unknown_card) == (1, 4, 1)
    assert {r.reason: r.overridden for r in report.by_override_reason} == {
        "(no reason code)": 1,
        f"{SYSTEM}|patient-preference": 1,
        f"{SYSTEM}|too-risky": 2,
    }
    empty = await store.feedback_report("nobody")
    assert (empty.cards, empty.accepted, empty.overridden, empty.unknown_card) == (0, 0, 0, 0)


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({"outcome": "accepted"}, "acceptedSuggestions is required"),
        ({"outcome": "accepted", "acceptedSuggestions": []}, "acceptedSuggestions is required"),
        ({"outcome": "ignored"}, "outcome"),
        ({"outcome": "overridden", "overrideReason": {}}, "reason or a userComment"),
        ({"outcome": "overridden", "outcomeTimestamp": "2026-03-01T12:00:00"}, "timezone"),
        ({"outcome": "overridden", "outcomeTimestamp": 1772366400}, "RFC 3339"),
        ({"outcome": "overridden", "outcomeTimestamp": "yesterday"}, "outcomeTimestamp"),
        ({"outcome": "overridden", "card": ""}, "card"),
    ],
)
def test_invalid_feedback_is_a_validation_error(body: dict[str, Any], complaint: str) -> None:
    full = {"card": "c-1", "outcomeTimestamp": "2026-03-01T12:00:00Z", **body}
    with pytest.raises(ValidationError, match=complaint):
        FeedbackIn.model_validate(full)


def test_camel_case_wire_names_and_unknown_fields() -> None:
    got = FeedbackIn.model_validate(
        {
            "card": "c-1",
            "outcome": "accepted",
            "acceptedSuggestions": [{"id": "s-1", "extra": 1}],
            "outcomeTimestamp": "2026-03-01T14:00:00+02:00",
            "extension": {"x": 1},
        }
    )
    assert got.outcome_timestamp == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert got.outcome_timestamp.tzinfo is UTC


async def test_a_batch_past_the_bound_parameter_limits(store: Store, card: str) -> None:
    # 33,000 distinct cards: one `IN (...)` of them passed asyncpg's 32,767 bound parameters (a
    # 503 "database unavailable" the EHR retried in vain), and one INSERT per item held SQLite's
    # write lock long enough for every other call's jti check to time out (503 too).
    batch = [overridden(f"card-{n}", "too-risky", "2026-03-01T12:01:00Z") for n in range(33_000)]
    batch += [batch[0], item(card)]
    result = await store.save_feedback("operator-cto", batch)
    assert (result.stored, result.duplicate, result.unknown_card) == (33_001, 1, 33_000)
    again = await store.save_feedback("operator-cto", batch[-3:])
    assert (again.stored, again.duplicate, again.unknown_card) == (0, 3, 0)
    report = await store.feedback_report("operator-cto")
    assert report.accepted + report.overridden + report.unknown_card == 33_001
