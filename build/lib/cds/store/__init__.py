"""Persistent state of the CDS service: replay cache (CH-25), card audit (CH-16), feedback (CH-22)
and appContext handles (SM-08), on embedded SQLite or PostgreSQL.

`Store.open(url)` connects and migrates; `migrate(url)` runs the packaged alembic migrations alone.
"""

from __future__ import annotations

from cds.store.engine import migrate
from cds.store.repository import Store
from cds.store.schemas import (
    CardAuditIn,
    CardAuditOut,
    FeedbackIn,
    FeedbackOut,
    FeedbackResult,
)

__all__ = [
    "CardAuditIn",
    "CardAuditOut",
    "FeedbackIn",
    "FeedbackOut",
    "FeedbackResult",
    "Store",
    "migrate",
]
