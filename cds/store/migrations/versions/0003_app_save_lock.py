"""The SMART app's Save slot per session, shared by every replica: app_save_lock.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06

A frozen snapshot in plain SQLAlchemy types, like 0001: it never imports the models.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "app_save_lock",
        sa.Column("id", ID, nullable=False),
        sa.Column("session_hash", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_app_save_lock"),
        sa.UniqueConstraint("session_hash", name="uq_app_save_lock_session_hash"),
    )
    op.create_index("ix_app_save_lock_expires_at", "app_save_lock", ["expires_at"])


def downgrade() -> None:
    op.drop_table("app_save_lock")
