"""`cto-cds db upgrade`: the store's schema migrations alone, for a one-shot job before the replicas.

`cto-cds serve` migrates at start-up by default (one node, nothing else to run). Where a Kubernetes
Job runs `db upgrade` instead, the replicas set `CTO_CDS_MIGRATE_ON_START=false` and only check that
the schema is at head, or newer and still admitting this release (`require_schema`), so no replica
ever runs DDL under live traffic.
"""

from __future__ import annotations

import asyncio

import typer

from cds.cli.errors import fail
from cds.errors import CdsError, ConfigError

# The store (SQLAlchemy, alembic) is imported in the commands: `cto-cds score` should not pay for it.
db_app = typer.Typer(help="The service's database (CTO_CDS_DATABASE_URL).", no_args_is_help=True)


def shown_url(url: str) -> str:
    """The URL as set, its user-info and query masked (`cds.urls.masked`)."""
    from cds.urls import masked

    return masked(url)


async def require_schema(url: str) -> None:
    """Reach the database and insist this release may run on its schema (at head, or newer and
    admitting it); ConfigError naming the setting if not."""
    from cds.store.engine import START_ERRORS, check_schema, create_engine, describe

    engine = create_engine(url)
    try:
        await check_schema(engine)
    except START_ERRORS as exc:
        raise ConfigError(
            f"CTO_CDS_DATABASE_URL: cannot use the database at {shown_url(url)} ({describe(exc)})"
        ) from None
    finally:
        await engine.dispose()


@db_app.command("upgrade")
def upgrade() -> None:
    """Upgrade the database schema to this version's newest revision (a no-op when it is there, or
    at a newer release's revision that still admits this one).

    Safe to run twice or from several places at once (PostgreSQL advisory lock, SQLite
    BEGIN IMMEDIATE)."""
    from cds.settings import load_settings
    from cds.store.engine import prepare

    try:
        url = load_settings().database_url
        where = asyncio.run(prepare(url))
    except CdsError as exc:
        fail(str(exc))
    print(f"{shown_url(url)}: {where}")
