"""The jti replay cache (CH-25): new once, replayed ever after, atomic across tasks and replicas."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from cds.errors import AuthError
from cds.store import Store
from tests.store.conftest import T0, Clock

pytestmark = pytest.mark.anyio

ISS = "https://ehr.example.org/fhir"
EXP = T0 + timedelta(minutes=5)
ROOT = Path(__file__).parents[2]


async def test_a_jti_is_new_once_then_a_replay(store: Store) -> None:
    assert await store.remember(ISS, "jti-1", EXP) is True
    assert await store.remember(ISS, "jti-1", EXP) is False
    assert await store.remember(ISS, "jti-1", EXP + timedelta(hours=1)) is False
    # The same jti from another issuer is another token.
    assert await store.remember("https://other.example.org", "jti-1", EXP) is True
    assert await store.remember(ISS, "jti-2", EXP) is True


async def test_expiry_in_any_offset_is_the_same_instant(store: Store) -> None:
    paris = timezone(timedelta(hours=1))
    assert await store.remember(ISS, "jti-tz", EXP.astimezone(paris)) is True
    assert await store.prune(EXP - timedelta(seconds=1)) == {"seen_jti": 0, "app_context_handle": 0}
    assert await store.prune(EXP) == {"seen_jti": 1, "app_context_handle": 0}


@pytest.mark.parametrize(
    ("iss", "jti", "reason"),
    [(ISS, "", "jti-invalid"), (ISS, "j" * 256, "jti-invalid"), ("", "j", "iss-invalid")],
)
async def test_unusable_ids_are_refused_as_auth_errors(
    store: Store, iss: str, jti: str, reason: str
) -> None:
    with pytest.raises(AuthError) as refused:
        await store.remember(iss, jti, EXP)
    assert refused.value.reason == reason


async def test_a_naive_expiry_is_a_bug_at_the_caller(store: Store) -> None:
    with pytest.raises(ValueError, match="naive"):
        await store.remember(ISS, "jti-naive", datetime(2026, 3, 1, 12, 5))


@pytest.mark.parametrize("replicas", [1, 2])
async def test_twenty_concurrent_callers_one_winner(
    store: Store, database_url: str, clock: Clock, replicas: int
) -> None:
    """20 tasks present the same token at once, through 1 or 2 engines (= replicas)."""
    stores = [store] + [await Store.open(database_url, clock=clock) for _ in range(replicas - 1)]
    try:
        jti = str(uuid.uuid4())
        results = await asyncio.gather(
            *(stores[i % replicas].remember(ISS, jti, EXP) for i in range(20))
        )
    finally:
        for extra in stores[1:]:
            await extra.close()
    assert results.count(True) == 1
    assert results.count(False) == 19


RACER = textwrap.dedent(
    """
    import asyncio, sys, time
    from datetime import datetime
    from cds.store import Store

    async def main(url, jti, start):
        store = await Store.open(url, migrate=False)
        exp = datetime.fromisoformat("2999-01-01T00:00:00+00:00")  # never pruned by the real clock
        await asyncio.sleep(max(0.0, start - time.time()))
        won = await asyncio.gather(*(store.remember("iss", jti, exp) for _ in range(5)))
        await store.close()
        print(sum(won))

    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
    """
)


async def test_four_processes_one_winner(store: Store, database_url: str) -> None:
    """Four OS processes × 5 tasks, released at the same instant: one True in all."""
    jti = str(uuid.uuid4())
    start = str(time.time() + 1.5)  # after every interpreter has started and connected
    procs = [
        await asyncio.create_subprocess_exec(
            *(sys.executable, "-c", RACER, database_url, jti, start),
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
        )
        for _ in range(4)
    ]
    outputs = [await proc.communicate() for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    assert sum(int(out.decode()) for out, _ in outputs) == 1
    assert await store.remember("iss", jti, EXP) is False


async def test_prune_removes_only_expired_rows(store: Store) -> None:
    await store.remember(ISS, "first", EXP)  # the first call prunes; the next is 5 minutes away
    await store.remember(ISS, "old", T0 - timedelta(seconds=1))
    await store.remember(ISS, "edge", T0)
    await store.remember(ISS, "live", T0 + timedelta(seconds=1))
    assert (await store.prune(T0))["seen_jti"] == 2
    assert await store.remember(ISS, "live", EXP) is False  # still cached
    assert await store.remember(ISS, "old", EXP) is True  # gone: its token has expired anyway


async def test_remember_prunes_now_and_then(database_url: str) -> None:
    clock = Clock()
    async with await Store.open(database_url, clock=clock) as store:
        # The first call prunes (nothing yet); the next prune is due 5 minutes later.
        await store.remember(ISS, "a", T0 + timedelta(minutes=1))
        await store.remember(ISS, "b", T0 + timedelta(minutes=1))
        clock.advance(timedelta(minutes=2))  # both expired, but the interval has not passed
        await store.remember(ISS, "c", T0 + timedelta(hours=1))
        assert await store.remember(ISS, "a", EXP) is False
        clock.advance(timedelta(minutes=4))  # 6 minutes after the first prune
        await store.remember(ISS, "d", T0 + timedelta(hours=1))  # prunes a and b
        assert await store.remember(ISS, "b", EXP) is True
        assert await store.remember(ISS, "c", EXP) is False
