"""`cto-cds db upgrade` and the replicas' start-up check (`CTO_CDS_MIGRATE_ON_START=false`)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from cds.cli.db import require_schema
from cds.errors import ConfigError
from tests.cli.test_app import run
from tests.store.conftest import head_revisions


def _sqlite_env(path: Path) -> dict[str, str]:
    return {"CTO_CDS_DATABASE_URL": f"sqlite+aiosqlite:///{path}"}


def _revision(path: Path) -> list[str]:
    with sqlite3.connect(path) as connection:
        return [row[0] for row in connection.execute("SELECT version_num FROM alembic_version")]


def test_upgrade_brings_a_new_database_to_head_and_a_second_run_changes_nothing(
    tmp_path: Path,
) -> None:
    db = tmp_path / "cds.db"
    first = run("db", "upgrade", env=_sqlite_env(db))
    assert first.returncode == 0, first.stderr
    heads = head_revisions()
    assert f"schema at {', '.join(heads)} (head)" in first.stdout
    assert _revision(db) == heads
    before = db.stat().st_mtime_ns, _revision(db)
    second = run("db", "upgrade", env=_sqlite_env(db))
    assert second.returncode == 0, second.stderr
    assert (db.stat().st_mtime_ns, _revision(db)) == before


def test_upgrade_of_an_unreachable_database_is_one_line_without_the_password() -> None:
    done = run(
        "db",
        "upgrade",
        env={"CTO_CDS_DATABASE_URL": "postgresql+asyncpg://cds:s3cret@127.0.0.1:1/cds"},
    )
    assert done.returncode == 2
    assert done.stderr.startswith("cto-cds: error: CTO_CDS_DATABASE_URL: cannot use the database")
    assert done.stderr.count("\n") == 1
    assert "s3cret" not in done.stderr
    assert done.stdout == ""


def test_require_schema_refuses_an_unmigrated_database_then_accepts_it_after_upgrade(
    tmp_path: Path,
) -> None:
    db = tmp_path / "cds.db"
    url = f"sqlite+aiosqlite:///{db}"
    with pytest.raises(ConfigError, match=r"^CTO_CDS_DATABASE_URL: schema at revision none"):
        asyncio.run(require_schema(url))
    assert run("db", "upgrade", env=_sqlite_env(db)).returncode == 0
    asyncio.run(require_schema(url))  # no error: at head


def test_serve_without_migrate_on_start_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    db = tmp_path / "cds.db"
    done = run("serve", "--port", "1", env={**_sqlite_env(db), "CTO_CDS_MIGRATE_ON_START": "false"})
    assert done.returncode == 2
    assert done.stderr.startswith("cto-cds: error: CTO_CDS_DATABASE_URL: schema at revision none")
    assert "run the store migrations first" in done.stderr
    assert done.stderr.count("\n") == 1
    # Nothing was migrated: the replica left the schema to the job.
    with sqlite3.connect(db) as connection:
        tables = connection.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
    assert tables == []


def _leave_at(path: Path, revision: str, oldest_compatible: str) -> None:
    """As a newer release's migration Job leaves the schema."""
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = ?", (revision,))
        connection.execute("UPDATE schema_compat SET oldest_compatible = ?", (oldest_compatible,))


def test_upgrade_by_an_older_release_leaves_a_newer_schema_alone(tmp_path: Path) -> None:
    """A rollback's Job (the older image runs `db upgrade` again): no alembic error, no change,
    and one line saying where the schema stands; refused, exit 2, when it no longer admits it."""
    db = tmp_path / "cds.db"
    assert run("db", "upgrade", env=_sqlite_env(db)).returncode == 0
    (head,) = head_revisions()
    _leave_at(db, "0999", oldest_compatible=head)
    done = run("db", "upgrade", env=_sqlite_env(db))
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(
        f": schema at revision 0999, newer than this version's {head} and admitting releases "
        f"from {head} on\n"
    )
    assert _revision(db) == ["0999"]
    _leave_at(db, "0999", oldest_compatible="0999")
    refused = run("db", "upgrade", env=_sqlite_env(db))
    assert refused.returncode == 2
    assert refused.stderr == (
        "cto-cds: error: CTO_CDS_DATABASE_URL: schema at revision 0999 admits only releases from "
        f"0999 on, this version is at {head}: deploy a newer release\n"
    )
    assert _revision(db) == ["0999"]
