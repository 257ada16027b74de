"""The quality officers' feedback report: cards of a period by band, the feedback on them."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from cds.store import Store
from cds.store.feedback_report import UNDETERMINED
from tests.store.conftest import T0, card_audit
from tests.store.test_feedback import SYSTEM, item, overridden

pytestmark = pytest.mark.anyio


async def issue(
    store: Store, band: str | None, days: int = 0, service: str = "operator-cto"
) -> str:
    scores: dict[str, Any] = {"operator_cto": {"points": 1, "band": band}}
    audit = card_audit(scores=scores, created_at=T0 + timedelta(days=days), service_id=service)
    await store.save_card(audit)
    return audit.card_uuid


async def test_cards_by_band_with_outcomes_reasons_and_the_period(store: Store) -> None:
    easy1, easy2 = await issue(store, "easy"), await issue(store, "easy")
    hard = await issue(store, "difficult")
    ranged = await issue(store, None)  # unknown inputs left more than one band
    old = await issue(store, "easy", days=-40)  # before the period
    other = await issue(store, "easy", service="another-service")
    await store.save_feedback(
        "operator-cto",
        [
            item(easy1),
            overridden(easy1, "too-risky", "2026-03-01T12:02:00Z"),
            overridden(easy2, "too-risky", "2026-03-01T12:03:00Z"),
            overridden(hard, "patient-preference", "2026-03-01T12:04:00Z"),
            overridden(ranged, None, "2026-03-01T12:05:00Z", comment="free text"),
            item(old),
            item(str(uuid.uuid4())),  # a card this database never issued
        ],
    )
    await store.save_feedback("another-service", [overridden(other, "x", "2026-03-01T12:06:00Z")])

    report = await store.feedback_report(
        "operator-cto", since=T0 - timedelta(days=30), until=T0 + timedelta(days=1)
    )
    assert (report.cards, report.cards_with_feedback) == (4, 4)
    assert (report.accepted, report.overridden) == (1, 4)
    assert [r.model_dump() for r in report.by_band] == [
        {"band": "difficult", "cards": 1, "cards_with_feedback": 1, "accepted": 0, "overridden": 1},
        {"band": "easy", "cards": 2, "cards_with_feedback": 2, "accepted": 1, "overridden": 2},
        {
            "band": UNDETERMINED,
            "cards": 1,
            "cards_with_feedback": 1,
            "accepted": 0,
            "overridden": 1,
        },
    ]
    assert [(r.reason, r.overridden) for r in report.by_override_reason] == [
        (f"{SYSTEM}|too-risky", 2),
        ("(no reason code)", 1),
        (f"{SYSTEM}|patient-preference", 1),
    ]
    assert report.unknown_card == 1

    everything = await store.feedback_report("operator-cto")
    assert (everything.cards, everything.accepted) == (5, 2)
    later = await store.feedback_report("operator-cto", since=T0 + timedelta(days=1))
    assert (later.cards, later.unknown_card) == (0, 0)  # the stray item was received at T0


async def test_an_empty_period_is_all_zero(store: Store) -> None:
    await issue(store, "easy")
    report = await store.feedback_report("operator-cto", since=T0 + timedelta(days=1))
    assert (report.cards, report.accepted, report.overridden, report.unknown_card) == (0, 0, 0, 0)
    assert report.by_band == []
    assert report.by_override_reason == []
