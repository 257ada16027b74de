"""SMART app sessions: the state is claimed once, expired sessions are not claimable."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from cds.store import Store
from cds.store.app_sessions import AppSessionRow
from tests.store.conftest import T0

pytestmark = pytest.mark.anyio


def _row(name: str = "s1", state: str = "state-1") -> AppSessionRow:
    return AppSessionRow(
        session_hash=f"hash-{name}",
        iss="https://ehr.example/fhir",
        status="authorizing",
        created_at=T0,
        expires_at=T0 + timedelta(minutes=10),
        secret="ciphertext",
        state=state,
        context={"launch": "abc"},
    )


async def test_claim_once_then_activate(store: Store) -> None:
    await store.start_app_session(_row())
    claimed = await store.claim_app_session("hash-s1", "state-1", now=T0)
    assert claimed is not None
    assert claimed.status == "exchanging"
    assert claimed.state is None
    assert claimed.context == {"launch": "abc"}
    assert claimed.expires_at == T0 + timedelta(minutes=10)
    assert await store.claim_app_session("hash-s1", "state-1", now=T0) is None  # replay
    await store.activate_app_session("hash-s1", {"patient": "p"}, "tok", T0 + timedelta(hours=1))
    active = await store.app_session("hash-s1")
    assert active is not None
    assert active.status == "active"
    assert (active.context, active.secret) == ({"patient": "p"}, "tok")


async def test_wrong_state_wrong_cookie_or_expired_claims_nothing(store: Store) -> None:
    await store.start_app_session(_row())
    assert await store.claim_app_session("hash-s1", "state-2", now=T0) is None
    assert await store.claim_app_session("hash-other", "state-1", now=T0) is None
    late = T0 + timedelta(minutes=10)
    assert await store.claim_app_session("hash-s1", "state-1", now=late) is None
    row = await store.app_session("hash-s1")
    assert row is not None
    assert row.status == "authorizing"
    assert await store.app_session("hash-unknown") is None


async def test_concurrent_callbacks_claim_once(store: Store) -> None:
    await store.start_app_session(_row())
    results = await asyncio.gather(
        *(store.claim_app_session("hash-s1", "state-1", now=T0) for _ in range(5))
    )
    assert sum(r is not None for r in results) == 1


async def test_prune_deletes_only_expired_sessions(store: Store) -> None:
    await store.start_app_session(_row("old", "state-old"))
    later = _row("new", "state-new")
    await store.start_app_session(
        AppSessionRow(**{**later.__dict__, "expires_at": T0 + timedelta(hours=2)})
    )
    assert await store.prune_app_sessions(now=T0 + timedelta(minutes=10)) == 1
    assert await store.app_session("hash-old") is None
    assert await store.app_session("hash-new") is not None
