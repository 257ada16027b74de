"""The per-call inserts (jti, card audit, feedback) are compiled once, then served from SQLAlchemy's
statement cache: the dialects' `insert().on_conflict_do_nothing()` has no cache key in SQLAlchemy
2.0 and was compiled again on every authenticated call (docs/performance.md)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from cds.store import Store
from tests.store.conftest import T0, card_audit
from tests.store.test_feedback import overridden

pytestmark = pytest.mark.anyio


def _watch(store: Store) -> list[tuple[str, Any]]:
    """(first words of each statement, its cache verdict), as the engine runs them."""
    seen: list[tuple[str, Any]] = []
    engines: list[Engine] = [store._engine.sync_engine]

    def record(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        if statement.startswith("INSERT"):
            seen.append((" ".join(statement.split()[:3]), context.cache_hit))

    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    return seen


async def test_the_hot_inserts_hit_the_statement_cache(store: Store) -> None:
    seen = _watch(store)
    dialect = store._engine.dialect
    for n in range(2):
        assert await store.remember("iss", f"jti-{n}", T0 + timedelta(minutes=5)) is True
        await store.save_cards([card_audit(), card_audit()])
        item = overridden(f"card-{n}", "too-risky", "2026-03-01T12:01:00Z")
        assert (await store.save_feedback("operator-cto", [item, item])).duplicate == 1
    second = seen[len(seen) // 2 :]
    # The jti insert and the card batches are raw statements on a SQLite file
    # (cds/store/sqlite_direct.py) and prepared statements on PostgreSQL's own pool
    # (cds/store/pg_direct.py): no compiling at all. The engine is their fallback (below).
    assert (store._direct is None) != (store._pg is None)
    # The feedback batch of two is one statement (`Store.save_feedback`).
    assert [what for what, _ in second] == ["INSERT INTO feedback"]
    assert {verdict for _, verdict in second} == {dialect.CACHE_HIT}
    # The direct paths off: the card insert through the engine, compiled once as well.
    if store._direct is not None:
        store._direct.close()
        store._direct = None
    if store._pg is not None:
        store._pg._resting_until = float("inf")
    seen.clear()
    for _ in range(2):
        await store.save_cards([card_audit()])
    assert seen == [
        ("INSERT INTO card_audit", seen[0][1]),
        ("INSERT INTO card_audit", dialect.CACHE_HIT),
    ]


async def test_a_repeated_jti_and_card_are_still_refused_by_the_unique_constraint(
    store: Store,
) -> None:
    audit = card_audit()
    await store.save_cards([audit, card_audit(audit.card_uuid, service_id="other")])
    stored = await store.card(audit.card_uuid)
    assert stored is not None
    assert stored.service_id == audit.service_id  # the first write wins
    assert stored.inputs == audit.inputs
    assert stored.card == audit.card
    assert await store.remember("iss", "j", T0 + timedelta(minutes=5)) is True
    assert await store.remember("iss", "j", T0 + timedelta(minutes=5)) is False
