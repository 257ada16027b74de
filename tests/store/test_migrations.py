"""Packaged alembic migrations: create the models' schema, and are no-ops when already at head."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect

from cds.errors import ConfigError
from cds.store import Store, migrate
from cds.store.engine import HEAD, REVISION, alembic_config, create_engine, database_url
from cds.store.models import Base
from tests.store.conftest import T0, card_audit, head_revisions

pytestmark = pytest.mark.anyio

TABLES = {
    "seen_jti",
    "card_audit",
    "feedback",
    "app_context_handle",
    "app_session",
    "app_save_lock",
    "schema_compat",
    "alembic_version",
}


def _state(connection: Connection) -> tuple[set[str], set[str], list[object]]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    tables = set(inspect(connection).get_table_names())
    return tables, set(context.get_current_heads()), compare_metadata(context, Base.metadata)


async def _inspect(url: str) -> tuple[set[str], set[str], list[object]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_state)
    finally:
        await engine.dispose()


async def test_migrate_creates_exactly_the_models_schema(database_url: str) -> None:
    await migrate(database_url)
    tables, heads, diff = await _inspect(database_url)
    assert tables == TABLES
    assert heads == {HEAD}
    assert diff == []  # models and migration agree, column types included


async def test_migrate_twice_is_a_no_op_and_keeps_data(database_url: str) -> None:
    await migrate(database_url)
    async with await Store.open(database_url, migrate=False) as store:
        await store.save_card(card_audit("card-kept"))
        assert await store.remember("iss", "jti-kept", T0 + timedelta(days=3650))
    await migrate(database_url)
    async with await Store.open(database_url) as store:  # open() migrates a third time
        assert await store.card("card-kept") is not None
        assert await store.remember("iss", "jti-kept", T0 + timedelta(days=3650)) is False
    assert (await _inspect(database_url))[1] == {HEAD}


async def test_replicas_migrating_at_once(database_url: str) -> None:
    await asyncio.gather(*(migrate(database_url) for _ in range(4)))
    assert (await _inspect(database_url))[1] == {HEAD}


async def test_open_without_migrating_refuses_an_old_schema(database_url: str) -> None:
    with pytest.raises(ConfigError, match="run the store migrations"):
        await Store.open(database_url, migrate=False)


def test_head_is_the_migrations_head() -> None:
    """`HEAD` is what start-up compares a database with, without alembic: a new migration that
    does not move it fails here."""
    assert head_revisions() == [HEAD]


async def test_an_older_schema_is_upgraded_to_head(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:

            def to_0002(sync: Connection) -> None:
                config = alembic_config()
                config.attributes["connection"] = sync
                command.upgrade(config, "0002")

            await connection.run_sync(to_0002)
    finally:
        await engine.dispose()
    assert "app_save_lock" not in (await _inspect(database_url))[0]
    await migrate(database_url)
    tables, heads, diff = await _inspect(database_url)
    assert (tables, heads, diff) == (TABLES, {HEAD}, [])


async def test_starting_at_head_does_not_import_alembic(database_url: str) -> None:
    """Importing alembic was ≈ 0.4 s of every start-up; a database at head needs none of it."""
    await migrate(database_url)  # alembic runs here, in this process
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from cds.store import Store, migrate
        async def main():
            await migrate({database_url!r})
            async with await Store.open({database_url!r}, migrate=False) as store:
                await store.ready()
        asyncio.run(main())
        print(sorted(m for m in sys.modules if m.split(".")[0] == "alembic"))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("sqlite:///x.db", "sqlite+aiosqlite"),
        ("postgresql://u@h/db", "postgresql+asyncpg"),
        ("postgres://u@h/db", "postgresql+asyncpg"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg"),
    ],
)
def test_urls_get_the_async_driver(given: str, driver: str) -> None:
    assert database_url(given).drivername == driver


@pytest.mark.parametrize(
    "given", ["mysql://u:s3cret@h/db", "postgresql+psycopg2://u:s3cret@h/db", "::"]
)
def test_unsupported_urls_are_config_errors_without_the_password(given: str) -> None:
    with pytest.raises(ConfigError) as refused:
        database_url(given)
    assert "s3cret" not in str(refused.value)


def test_offline_ddl_for_a_dba(capsys: pytest.CaptureFixture[str]) -> None:
    """Where DDL must be reviewed first: the PostgreSQL script, without touching a database."""
    command.upgrade(alembic_config("postgresql://dba@db.invalid/cds"), "head", sql=True)
    ddl = capsys.readouterr().out
    assert "CREATE TABLE seen_jti" in ddl
    assert "CONSTRAINT uq_feedback_card_uuid_outcome_outcome_timestamp UNIQUE" in ddl
    assert "INSERT INTO alembic_version (version_num) VALUES ('0001')" in ddl


def _migrations() -> list[tuple[str, str | None, str]]:
    """(revision, down_revision, source) of every packaged migration, oldest first."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(alembic_config())
    out = []
    for script in reversed(list(scripts.walk_revisions())):
        down = script.down_revision
        assert down is None or isinstance(down, str), f"{script.revision}: a merge"
        out.append((script.revision, down, Path(str(script.path)).read_text(encoding="utf-8")))
    return out


def test_revisions_are_numbered_in_one_line() -> None:
    """Newer and older are compared as text when a release meets a schema it does not know
    (cds/store/engine.py): four digits, each one more than the last, no branches."""
    revisions = _migrations()
    assert [(r, d) for r, d, _ in revisions] == [
        (f"{n:04d}", None if n == 1 else f"{n - 1:04d}") for n in range(1, len(revisions) + 1)
    ]
    assert all(REVISION.fullmatch(r) for r, _, _ in revisions)
    assert revisions[-1][0] == HEAD


# What makes a schema unusable to the release before: it must then raise schema_compat's row.
_BREAKING = re.compile(r"op\.(drop_\w+|alter_column|rename_table|execute)\(")


def test_a_migration_that_breaks_older_releases_says_so_in_schema_compat() -> None:
    """A rolling update runs the previous release on the new schema: a migration that drops,
    renames or rewrites must raise `schema_compat.oldest_compatible` in the same upgrade, or those
    replicas would keep serving on a schema that breaks them."""
    for revision, _, source in _migrations():
        upgrade = source[source.index("def upgrade(") : source.index("def downgrade(")]
        if _BREAKING.search(upgrade):
            assert "schema_compat" in upgrade, revision
            assert "oldest_compatible" in upgrade, revision
    assert not _BREAKING.search("op.create_table(")
    assert _BREAKING.search("op.drop_column(")


async def test_the_first_schema_compat_admits_every_release_so_far(database_url: str) -> None:
    await migrate(database_url)
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = (
                await connection.exec_driver_sql("SELECT id, oldest_compatible FROM schema_compat")
            ).all()
    finally:
        await engine.dispose()
    assert [tuple(row) for row in rows] == [(1, "0001")]
