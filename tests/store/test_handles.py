"""appContext handles (SM-08): random, distinct, unguessable, resolvable until they expire."""

from __future__ import annotations

import base64
import math
import re
from collections import Counter
from datetime import timedelta

import pytest

from cds.store import Store
from tests.store.conftest import T0

pytestmark = pytest.mark.anyio

STATE = {
    "patient": "p-1",
    "order": "ServiceRequest/sr-1",
    "inputs": {"age": {"value": 67}},
    "scores": {"operator_cto": {"points": 3, "probability": 0.7123}},
    "note": "Ñúñez ≥ 日本",
}


async def test_create_and_resolve(store: Store) -> None:
    handle = await store.create_handle("card-1", STATE, timedelta(hours=4))
    assert await store.resolve_handle(handle) == STATE
    assert await store.resolve_handle(handle, now=T0 + timedelta(hours=3, minutes=59)) == STATE


async def test_expired_unknown_and_altered_handles_resolve_to_none(store: Store) -> None:
    handle = await store.create_handle("card-1", STATE, timedelta(minutes=10))
    assert await store.resolve_handle(handle, now=T0 + timedelta(minutes=10)) is None
    assert await store.resolve_handle(handle, now=T0 + timedelta(days=1)) is None
    flipped = handle[:-1] + ("A" if handle[-1] != "A" else "B")
    assert await store.resolve_handle(flipped) is None
    for junk in ("", "x", handle + "A", handle[:-1] + ".", "' OR 1=1 --"):
        assert await store.resolve_handle(junk) is None


async def test_prune_drops_expired_handles(store: Store) -> None:
    short = await store.create_handle("card-1", STATE, timedelta(minutes=1))
    long = await store.create_handle("card-1", STATE, timedelta(hours=1))
    assert (await store.prune(T0 + timedelta(minutes=1)))["app_context_handle"] == 1
    assert await store.resolve_handle(short, now=T0) is None  # gone even before its expiry check
    assert await store.resolve_handle(long) == STATE


async def test_handles_are_distinct_url_safe_and_256_bits(store: Store) -> None:
    handles = [
        await store.create_handle("card-1", {"i": i}, timedelta(hours=1)) for i in range(200)
    ]
    assert len(set(handles)) == len(handles)
    for handle in handles:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", handle)
        assert len(base64.urlsafe_b64decode(handle + "=")) == 32  # 256 random bits
    # Characters are spread over the whole alphabet: empirical entropy near log2(64) = 6 bits.
    counts = Counter("".join(handles))
    total = sum(counts.values())
    entropy = -sum(n / total * math.log2(n / total) for n in counts.values())
    assert entropy > 5.9
    assert [await store.resolve_handle(h) for h in handles[:3]] == [{"i": 0}, {"i": 1}, {"i": 2}]


async def test_ttl_must_be_positive(store: Store) -> None:
    with pytest.raises(ValueError, match="ttl"):
        await store.create_handle("card-1", STATE, timedelta(0))
