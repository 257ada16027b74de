"""Which releases may still run on the schema: schema_compat, one row.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07

From this release on, a release that finds the database at a newer revision than its own (the
old replicas of a rolling update, after the migration Job; a rollback) runs on it when
`schema_compat.oldest_compatible` is at or below its own newest revision, instead of reporting
itself unready (cds/store/engine.py; docs/operations.md, "Upgrades"). Every migration so far only
adds tables, so the oldest release that can run on this schema is 0001's. A later migration that
drops or changes what an older release reads must raise the row in the same migration
(tests/store/test_migrations.py checks that it does).

A frozen snapshot in plain SQLAlchemy types, like 0001: it never imports the models.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        "schema_compat",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("oldest_compatible", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_schema_compat"),
        sa.CheckConstraint("id = 1", name="ck_schema_compat_one_row"),
    )
    op.bulk_insert(table, [{"id": 1, "oldest_compatible": "0001"}])


def downgrade() -> None:
    op.drop_table("schema_compat")
