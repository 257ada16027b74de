"""SMART app sessions (SM-03…SM-07): app_session.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06

A frozen snapshot in plain SQLAlchemy types, like 0001: it never imports the models.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "app_session",
        sa.Column("id", ID, nullable=False),
        sa.Column("session_hash", sa.String(64), nullable=False),
        sa.Column("iss", sa.String(1024), nullable=False),
        sa.Column("state", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_app_session"),
        sa.UniqueConstraint("session_hash", name="uq_app_session_session_hash"),
        sa.UniqueConstraint("state", name="uq_app_session_state"),
        sa.CheckConstraint(
            "status IN ('authorizing', 'exchanging', 'active')", name="ck_app_session_status"
        ),
    )
    op.create_index("ix_app_session_expires_at", "app_session", ["expires_at"])


def downgrade() -> None:
    op.drop_table("app_session")
