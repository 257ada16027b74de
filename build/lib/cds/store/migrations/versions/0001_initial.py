"""Initial store: seen_jti (CH-25), card_audit (CH-16), feedback (CH-22), app_context_handle (SM-08).

Revision ID: 0001
Revises:
Create Date: 2026-11-25

A frozen snapshot: it uses plain SQLAlchemy types (the models' UTCDateTime is DateTime(timezone=True)
in DDL) and never imports the models, so later model changes cannot alter it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _id(table: str) -> tuple[sa.Column[int], sa.PrimaryKeyConstraint]:
    return sa.Column("id", ID, nullable=False), sa.PrimaryKeyConstraint("id", name=f"pk_{table}")


def _instant(name: str) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "seen_jti",
        *_id("seen_jti"),
        sa.Column("iss", sa.String(1024), nullable=False),
        sa.Column("jti", sa.String(255), nullable=False),
        _instant("expires_at"),
        sa.UniqueConstraint("iss", "jti", name="uq_seen_jti_iss_jti"),
    )
    op.create_index("ix_seen_jti_expires_at", "seen_jti", ["expires_at"])

    op.create_table(
        "card_audit",
        *_id("card_audit"),
        sa.Column("card_uuid", sa.String(128), nullable=False),
        sa.Column("service_id", sa.String(128), nullable=False),
        sa.Column("hook", sa.String(128), nullable=False),
        sa.Column("hook_instance", sa.String(256), nullable=False),
        _instant("created_at"),
        sa.Column("patient_ref", sa.String(256), nullable=False),
        sa.Column("order_ref", sa.String(256), nullable=True),
        sa.Column("operator_ref", sa.String(256), nullable=True),
        sa.Column("index_date", sa.Date(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("card", sa.JSON(), nullable=False),
        sa.Column("mappings_version", sa.Text(), nullable=False),
        sa.UniqueConstraint("card_uuid", name="uq_card_audit_card_uuid"),
    )
    op.create_index(
        "ix_card_audit_service_id_created_at", "card_audit", ["service_id", "created_at"]
    )
    op.create_index("ix_card_audit_patient_ref", "card_audit", ["patient_ref"])

    op.create_table(
        "feedback",
        *_id("feedback"),
        sa.Column("service_id", sa.String(128), nullable=False),
        sa.Column("card_uuid", sa.String(128), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        _instant("outcome_timestamp"),
        sa.Column("accepted_suggestions", sa.JSON(), nullable=False),
        sa.Column("override_reason", sa.JSON(), nullable=True),
        sa.Column("reason_system", sa.Text(), nullable=True),
        sa.Column("reason_code", sa.Text(), nullable=True),
        sa.Column("known_card", sa.Boolean(), nullable=False),
        _instant("received_at"),
        sa.UniqueConstraint(
            "card_uuid",
            "outcome",
            "outcome_timestamp",
            name="uq_feedback_card_uuid_outcome_outcome_timestamp",
        ),
        sa.CheckConstraint("outcome IN ('accepted', 'overridden')", name="ck_feedback_outcome"),
    )
    op.create_index("ix_feedback_service_id_outcome", "feedback", ["service_id", "outcome"])

    op.create_table(
        "app_context_handle",
        *_id("app_context_handle"),
        sa.Column("handle", sa.String(64), nullable=False),
        sa.Column("card_uuid", sa.String(128), nullable=False),
        _instant("created_at"),
        _instant("expires_at"),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.UniqueConstraint("handle", name="uq_app_context_handle_handle"),
    )
    op.create_index("ix_app_context_handle_card_uuid", "app_context_handle", ["card_uuid"])
    op.create_index("ix_app_context_handle_expires_at", "app_context_handle", ["expires_at"])


def downgrade() -> None:
    for table in ("app_context_handle", "feedback", "card_audit", "seen_jti"):
        op.drop_table(table)
