"""A release meeting a schema other than its own head: the rolling update, the rollback, the
forgotten migration (cds/store/engine.py, `Fit`).

During a rolling update the migration Job upgrades the schema while the old release's replicas
still serve: they must stay ready on a newer schema that admits them (`schema_compat`), and only
there. The schema is moved here by rewriting its version rows, as a newer release's migration
would leave them.
"""

from __future__ import annotations

import logging

import pytest

from cds.errors import ConfigError
from cds.store import Store, migrate
from cds.store.engine import HEAD, create_engine
from tests.store.conftest import card_audit

pytestmark = pytest.mark.anyio


async def _leave_schema_at(url: str, revision: str, oldest_compatible: str | None) -> None:
    """Rewrite the version rows as a newer (or older) release's migrations would leave them."""
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.exec_driver_sql(
                f"UPDATE alembic_version SET version_num = '{revision}'"
            )
            if oldest_compatible is None:
                await connection.exec_driver_sql("DELETE FROM schema_compat")
            else:
                await connection.exec_driver_sql(
                    f"UPDATE schema_compat SET oldest_compatible = '{oldest_compatible}'"
                )
    finally:
        await engine.dispose()


async def _version(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            rows = await connection.exec_driver_sql("SELECT version_num FROM alembic_version")
            return [row[0] for row in rows]
    finally:
        await engine.dispose()


@pytest.mark.parametrize("migrate_on_open", [False, True])
async def test_a_newer_schema_that_admits_this_release_is_used_as_it_is(
    database_url: str, migrate_on_open: bool, caplog: pytest.LogCaptureFixture
) -> None:
    await migrate(database_url)
    await _leave_schema_at(database_url, "0999", oldest_compatible=HEAD)
    with caplog.at_level(logging.WARNING, logger="cds.store"):
        async with await Store.open(database_url, migrate=migrate_on_open) as store:
            assert await store.ready() is None  # the old replicas stay in the Service
            await store.save_card(card_audit("on-a-newer-schema"))
            assert await store.card("on-a-newer-schema") is not None
    assert await _version(database_url) == ["0999"]  # untouched: no downgrade, no alembic error
    said = [r.getMessage() for r in caplog.records if r.name == "cds.store"]
    assert said == [
        f"store: schema at revision 0999, newer than this version's {HEAD} and admitting releases "
        f"from {HEAD} on: running on it (a rolling update or a rollback)"
    ]
    assert await migrate(database_url) == said[0][len("store: ") : said[0].index(": running")]


@pytest.mark.parametrize("migrate_on_open", [False, True])
async def test_a_newer_schema_that_no_longer_admits_this_release_is_refused(
    database_url: str, migrate_on_open: bool
) -> None:
    await migrate(database_url)
    await _leave_schema_at(database_url, "0999", oldest_compatible="0998")
    with pytest.raises(ConfigError) as refused:
        await Store.open(database_url, migrate=migrate_on_open)
    assert str(refused.value) == (
        f"CTO_CDS_DATABASE_URL: schema at revision 0999 admits only releases from 0998 on, "
        f"this version is at {HEAD}: deploy a newer release"
    )
    assert await _version(database_url) == ["0999"]


async def test_a_running_store_follows_the_schema_under_it(database_url: str) -> None:
    """What `/readyz` reports while a migration Job moves the schema under a running replica."""
    async with await Store.open(database_url) as store:
        assert await store.ready() is None
        await _leave_schema_at(database_url, "0999", oldest_compatible="0001")
        assert await store.ready() is None
        await _leave_schema_at(database_url, "0999", oldest_compatible="0999")
        assert await store.ready() == (
            f"schema at revision 0999 admits only releases from 0999 on, this version is at "
            f"{HEAD}: deploy a newer release"
        )
        await _leave_schema_at(database_url, "0999", oldest_compatible=None)  # row lost
        assert "admits only releases from (unknown) on" in str(await store.ready())
        await _leave_schema_at(database_url, "0001", oldest_compatible="0001")  # a restored backup
        assert await store.ready() == (
            f"schema at revision ['0001'], this version needs ['{HEAD}']: "
            "run the store migrations first"
        )
        await _leave_schema_at(database_url, "9a1f", oldest_compatible="0001")  # not ours
        assert await store.ready() == (
            "schema at revision ['9a1f'], which is not one of cto-cds's migrations"
        )
        await _leave_schema_at(database_url, HEAD, oldest_compatible="0001")
        assert await store.ready() is None


async def test_a_revision_not_of_ours_is_refused_at_start(database_url: str) -> None:
    await migrate(database_url)
    await _leave_schema_at(database_url, "ae1027a6acf", oldest_compatible="0001")
    for migrate_on_open in (False, True):
        with pytest.raises(ConfigError, match="which is not one of cto-cds's migrations"):
            await Store.open(database_url, migrate=migrate_on_open)
