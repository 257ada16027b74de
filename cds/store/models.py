"""Tables of the service's store: replay cache, card audit, feedback, appContext handles.

SQLAlchemy 2 typed declarative models with portable types only (JSON, DateTime(timezone=True),
bounded strings), so the same schema runs on embedded SQLite and on PostgreSQL. The migration in
`cds/store/migrations/versions/` creates exactly these tables; `tests/store/test_migrations.py`
keeps the two in step.

- `SeenJti` (CH-25): the jti replay cache, one row per (iss, jti), pruned once expired.
- `CardAudit` (CH-16): every card sent, with its canonical inputs and provenance, scores and the
  mappings version, enough to reproduce it.
- `Feedback` (CH-22): accepted/overridden outcomes, idempotent on (card, outcome, timestamp).
- `AppContextHandle` (SM-08): the server-side state an opaque appContext handle points to.
- `AppSession`, `AppSaveLock`: the SMART app's sessions and its one-save-at-a-time slot.
- `SchemaCompat`: which releases may still run on this schema (a rolling update, a rollback).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from cds.text_checks import dumps_storable

# Column sizes, shared with the pydantic schemas so SQLite (which ignores VARCHAR lengths) and
# PostgreSQL (which enforces them) accept and refuse the same values.
ISS_MAX = 1024
JTI_MAX = 255
CARD_UUID_MAX = 128
ID_MAX = 128
REF_MAX = 256
HANDLE_MAX = 64

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "pk": "pk_%(table_name)s",
}


def as_utc(value: datetime) -> datetime:
    """`value` in UTC; a naive datetime is refused (ValueError): it is a bug at the caller."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()}: pass a tz-aware UTC instant")
    return value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A tz-aware UTC instant on every backend.

    PostgreSQL keeps `timestamptz`; SQLite stores naive text, so values are converted to UTC on the
    way in and marked UTC on the way out. Naive datetimes are refused: they are a bug at the caller.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Convert = Callable[[Any], Any]


def column_converters(
    table: Table, *, instant: Convert, day: Convert | None = None
) -> tuple[tuple[str, Convert | None], ...]:
    """`table`'s columns but `id`, in order, each with what turns a Python value into the one the
    engine binds for it, for the store's raw writes (cds/store/sqlite_direct.py, pg_direct.py):
    `UTCDateTime` by `instant`, `Date` by `day`, JSON by the store's serializer (None too: JSON's
    `null`, as the engine binds it); None for a column bound as it is. A None instant or date
    stays None."""

    def unless_none(to: Convert) -> Convert:
        return lambda value: None if value is None else to(value)

    out: list[tuple[str, Convert | None]] = []
    for column in table.c:
        if column.primary_key:
            continue
        kind = column.type
        if isinstance(kind, UTCDateTime):
            out.append((column.name, unless_none(instant)))
        elif isinstance(kind, Date) and day is not None:
            out.append((column.name, unless_none(day)))
        elif isinstance(kind, JSON):
            out.append((column.name, dumps_storable))
        else:
            out.append((column.name, None))
    return tuple(out)


# SQLite only auto-increments an `INTEGER PRIMARY KEY`; PostgreSQL gets a 64-bit identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class SeenJti(Base):
    """A client JWT id already accepted (CH-25): a second (iss, jti) is a replay."""

    __tablename__ = "seen_jti"
    __table_args__ = (
        UniqueConstraint("iss", "jti"),
        Index(None, "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    iss: Mapped[str] = mapped_column(String(ISS_MAX))
    jti: Mapped[str] = mapped_column(String(JTI_MAX))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CardAudit(Base):
    """One card as sent (CH-16), with what is needed to reproduce it."""

    __tablename__ = "card_audit"
    __table_args__ = (
        UniqueConstraint("card_uuid"),
        Index(None, "service_id", "created_at"),
        Index(None, "patient_ref"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    card_uuid: Mapped[str] = mapped_column(String(CARD_UUID_MAX))
    service_id: Mapped[str] = mapped_column(String(ID_MAX))
    hook: Mapped[str] = mapped_column(String(ID_MAX))
    hook_instance: Mapped[str] = mapped_column(String(REF_MAX))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    patient_ref: Mapped[str] = mapped_column(String(REF_MAX))
    order_ref: Mapped[str | None] = mapped_column(String(REF_MAX))
    operator_ref: Mapped[str | None] = mapped_column(String(REF_MAX))
    index_date: Mapped[date] = mapped_column(Date())
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON())
    scores: Mapped[dict[str, Any]] = mapped_column(JSON())
    card: Mapped[dict[str, Any]] = mapped_column(JSON())
    mappings_version: Mapped[str] = mapped_column(Text())


class Feedback(Base):
    """One feedback item (CH-22); the unique constraint makes repeats and duplicates no-ops."""

    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("card_uuid", "outcome", "outcome_timestamp"),
        CheckConstraint("outcome IN ('accepted', 'overridden')", name="outcome"),
        Index(None, "service_id", "outcome"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    service_id: Mapped[str] = mapped_column(String(ID_MAX))
    card_uuid: Mapped[str] = mapped_column(String(CARD_UUID_MAX))
    outcome: Mapped[str] = mapped_column(String(16))
    outcome_timestamp: Mapped[datetime] = mapped_column(UTCDateTime())
    accepted_suggestions: Mapped[list[dict[str, Any]]] = mapped_column(JSON())
    override_reason: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    reason_system: Mapped[str | None] = mapped_column(Text())
    """`overrideReason.reason.system`, copied out of the JSON so summaries group in plain SQL."""
    reason_code: Mapped[str | None] = mapped_column(Text())
    known_card: Mapped[bool]
    """False when no audit row existed for the card on receipt (served elsewhere, or not ours)."""
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AppContextHandle(Base):
    """Server-side state behind an opaque appContext handle (SM-08): no PHI travels in the link."""

    __tablename__ = "app_context_handle"
    __table_args__ = (
        UniqueConstraint("handle"),
        Index(None, "card_uuid"),
        Index(None, "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    handle: Mapped[str] = mapped_column(String(HANDLE_MAX))
    card_uuid: Mapped[str] = mapped_column(String(CARD_UUID_MAX))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    state: Mapped[dict[str, Any]] = mapped_column(JSON())


class AppSession(Base):
    """One SMART app session (SM-03…SM-07): launch state, then the context and encrypted tokens.

    The cookie carries only an opaque id; the row is keyed by its SHA-256, so a read of this table
    does not yield live cookies. `state` is the OAuth state while authorizing and NULL once the
    callback claimed it (a replayed callback finds nothing). `secret` is a Fernet token holding the
    PKCE verifier, then the access/refresh/id tokens: never stored in clear.
    """

    __tablename__ = "app_session"
    __table_args__ = (
        UniqueConstraint("session_hash"),
        UniqueConstraint("state"),
        CheckConstraint("status IN ('authorizing', 'exchanging', 'active')", name="status"),
        Index(None, "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    session_hash: Mapped[str] = mapped_column(String(HANDLE_MAX))
    iss: Mapped[str] = mapped_column(String(ISS_MAX))
    state: Mapped[str | None] = mapped_column(String(HANDLE_MAX))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    context: Mapped[dict[str, Any]] = mapped_column(JSON())
    secret: Mapped[str] = mapped_column(Text())


class AppSaveLock(Base):
    """The app's Save slot of one session, in the database so it holds across replicas.

    One row per session while a save runs: taken by an INSERT that only overwrites an expired row,
    released by DELETE naming the holder (a slow save whose lock expired and was taken over cannot
    release the new holder's). `expires_at` bounds a lock left by a process that died mid-save.
    """

    __tablename__ = "app_save_lock"
    __table_args__ = (
        UniqueConstraint("session_hash"),
        Index(None, "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    session_hash: Mapped[str] = mapped_column(String(HANDLE_MAX))
    holder: Mapped[str] = mapped_column(String(HANDLE_MAX))
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SchemaCompat(Base):
    """One row: the oldest release, named by its newest migration, that may still run on this schema.

    During a rolling update the old release's replicas keep serving on the schema the new release's
    migration Job has just upgraded, and a rollback runs the old release on it again: a release
    finding the schema newer than its own head runs on it when this says it may
    (`cds/store/engine.py`). A migration that only adds keeps the row; one that drops or changes
    what an older release reads raises it (docs/operations.md, "Upgrades").
    """

    __tablename__ = "schema_compat"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    oldest_compatible: Mapped[str] = mapped_column(String(32))
