"""`cto-cds db upgrade` then `serve`'s start-up check with CTO_CDS_MIGRATE_ON_START=false, on each
database the suite has (SQLite always; PostgreSQL when CTO_CDS_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import asyncio

import pytest

from cds.cli.db import require_schema, shown_url
from cds.errors import ConfigError
from tests.cli.test_app import run
from tests.store.conftest import head_revisions


def test_the_job_migrates_and_the_replica_check_then_passes(database_urls: dict[str, str]) -> None:
    for backend, url in database_urls.items():
        with pytest.raises(ConfigError, match="run the store migrations first"):
            asyncio.run(require_schema(url))
        for _ in range(2):  # a second run is a no-op at head
            done = run("db", "upgrade", env={"CTO_CDS_DATABASE_URL": url})
            assert done.returncode == 0, (backend, done.stderr)
            assert (
                done.stdout == f"{shown_url(url)}: schema at {', '.join(head_revisions())} (head)\n"
            )
        asyncio.run(require_schema(url))
