"""Alembic environment for the store (CH-22, CH-25, SM-08 tables); no alembic.ini needed.

`cds.store.engine.upgrade` hands over a sync connection (from `AsyncConnection.run_sync`) in
`config.attributes["connection"]`, inside its own transaction. Without one, `sqlalchemy.url` is
used: online through an async engine, or offline (`--sql`) to print the DDL for a DBA.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from cds.store.models import Base

config = context.config
target_metadata = Base.metadata


def run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_online(url: str) -> None:
    from cds.store.engine import create_engine

    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run_with)
    finally:
        await engine.dispose()


def run_offline(url: str) -> None:
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


given = config.attributes.get("connection")
if given is not None:
    run_with(given)
elif context.is_offline_mode():
    run_offline(config.get_main_option("sqlalchemy.url") or "")
else:
    asyncio.run(run_online(config.get_main_option("sqlalchemy.url") or ""))
