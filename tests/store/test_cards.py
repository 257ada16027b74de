"""Card audit (CH-16): a card and what produced it come back exactly, also after a restart."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest

from cds.store import FeedbackIn, Store
from tests.store.conftest import T0, Clock, card_audit

pytestmark = pytest.mark.anyio


async def test_card_audit_round_trip(store: Store) -> None:
    sent = card_audit()
    await store.save_card(sent)
    got = await store.card(sent.card_uuid)
    assert got is not None
    assert got.model_dump() == sent.model_dump()
    assert got.scores["operator_cto"]["probability"] == 0.1 + 0.2  # repr-exact floats
    assert got.scores["operator_cto"]["tiny"] == 5e-324
    assert got.card["summary"] == "Operator-CTO 3 (success ≈ 71 %) – Dr Ñúñez 日本"
    assert list(got.card) == list(sent.card)  # the card as sent, key order included
    assert json.dumps(got.inputs, sort_keys=True) == json.dumps(sent.inputs, sort_keys=True)
    assert got.created_at == T0
    assert got.created_at.utcoffset() == timedelta(0)


async def test_created_at_defaults_to_the_store_clock(store: Store, clock: Clock) -> None:
    clock.advance(timedelta(hours=3))
    sent = card_audit(created_at=None, order_ref=None, operator_ref=None)
    await store.save_card(sent)
    got = await store.card(sent.card_uuid)
    assert got is not None
    assert got.created_at == T0 + timedelta(hours=3)
    assert (got.order_ref, got.operator_ref) == (None, None)


async def test_unknown_card_is_none(store: Store) -> None:
    assert await store.card(str(uuid.uuid4())) is None


async def test_a_retried_save_keeps_the_first_write(store: Store) -> None:
    first = card_audit()
    await store.save_card(first)
    await store.save_card(card_audit(first.card_uuid, mappings_version="other"))
    got = await store.card(first.card_uuid)
    assert got is not None
    assert got.mappings_version == first.mappings_version


async def test_everything_survives_a_restart(database_url: str, clock: Clock) -> None:
    """Close the store and open it again on the same file/database (a service restart)."""
    sent = card_audit()
    feedback = FeedbackIn.model_validate(
        {
            "card": sent.card_uuid,
            "outcome": "overridden",
            "overrideReason": {"userComment": "patient declined"},
            "outcomeTimestamp": "2026-03-01T12:01:00Z",
        }
    )
    async with await Store.open(database_url, clock=clock) as store:
        await store.save_card(sent)
        assert await store.remember("iss", "jti-restart", T0 + timedelta(hours=1))
        await store.save_feedback("operator-cto", [feedback])
        handle = await store.create_handle(sent.card_uuid, {"patient": "p-1"}, timedelta(hours=1))

    async with await Store.open(database_url, clock=clock) as store:
        assert await store.card(sent.card_uuid) is not None
        assert await store.remember("iss", "jti-restart", T0 + timedelta(hours=1)) is False
        assert (await store.save_feedback("operator-cto", [feedback])).duplicate == 1
        assert len(await store.feedback_for(sent.card_uuid)) == 1
        assert await store.resolve_handle(handle) == {"patient": "p-1"}


@pytest.mark.parametrize("bad", ["\x00", "\ud800"], ids=["nul", "lone-surrogate"])
async def test_a_card_quoting_unstorable_ehr_text_is_audited_with_it_replaced(
    store: Store, bad: str
) -> None:
    """EHR text in a card (an OperationOutcome's diagnostics) may hold NUL or a lone surrogate:
    the row is stored (U+FFFD in their place), never refused, on SQLite and PostgreSQL alike."""
    detail = f"conditions: server error (timeout{bad}x)"
    sent = card_audit(
        card={"summary": "s", "detail": detail},
        inputs={"prior_cabg": {"value": None, "note": detail, f"key{bad}": 1}},
    )
    await store.save_card(sent)
    got = await store.card(sent.card_uuid)
    assert got is not None
    assert got.card["detail"] == "conditions: server error (timeout\ufffdx)"
    assert got.inputs["prior_cabg"]["note"] == got.card["detail"]
    assert "key\ufffd" in got.inputs["prior_cabg"]
