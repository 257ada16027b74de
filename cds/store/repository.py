"""The store: jti replay cache (CH-25), card audit (CH-16), feedback (CH-22), appContext handles
(SM-08), on SQLite or PostgreSQL through SQLAlchemy's async engine.

Uniqueness lives in the database, so the guarantees hold across processes and replicas: a jti is
new for exactly one caller, and feedback is stored once per (card, outcome, timestamp). Both use
`INSERT ... ON CONFLICT DO NOTHING RETURNING` on the unique constraint (no row back: it was
there), which also keeps PostgreSQL's transaction and log free of unique-violation errors.

The clock is read only at the edges, and only when the caller passes no `now`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, cast

from sqlalchemy import (
    Connection,
    CursorResult,
    Table,
    TextClause,
    bindparam,
    delete,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cds import metrics
from cds.errors import AuthError
from cds.store.app_sessions import AppSessionRow
from cds.store.engine import (
    DATABASE_ERRORS,
    MAX_CONNECTIONS,
    Fit,
    check_schema,
    connection_budget,
    create_engine,
    schema_fit,
    sqlite_path,
    upgrade,
)
from cds.store.feedback_report import FeedbackReport, feedback_report
from cds.store.models import (
    ISS_MAX,
    JTI_MAX,
    AppContextHandle,
    AppSaveLock,
    AppSession,
    Base,
    CardAudit,
    Feedback,
    SeenJti,
)
from cds.store.pg_direct import PgDirect, bound_as, direct_target, numbered
from cds.store.rows import feedback_row
from cds.store.schemas import (
    CardAuditIn,
    CardAuditOut,
    FeedbackIn,
    FeedbackOut,
    FeedbackResult,
    HandleRow,
)
from cds.store.sqlite_direct import DirectWrites, Unavailable, stored_as

log = logging.getLogger(__name__)

HANDLE_BYTES = 32  # 256 random bits → 43 URL-safe characters
HANDLE_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")
PRUNE_INTERVAL = timedelta(minutes=5)
FEEDBACK_ROWS = 512
"""Most feedback rows in one statement: 512 × 10 columns stays well below the bound-parameter
limits of both backends (32,767 for asyncpg, 32,766 for SQLite)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def numbered_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The parameters of a multi-row INSERT (`Store._insert_or_skip(rows=...)`): `column_n`."""
    return {f"{name}_{n}": value for n, row in enumerate(rows) for name, value in row.items()}


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a tz-aware datetime, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _file_identity(path: str | None) -> tuple[int, int] | None:
    if path is None:
        return None
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


class Store:
    """Persistent state of the service. Build with `await Store.open(url)`; `await close()` at exit."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Callable[[], datetime] = utcnow,
        prune_interval: timedelta = PRUNE_INTERVAL,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        """`max_connections`: the most this store opens on PostgreSQL, the engine's included (it
        was built with the same number: `Store.open`)."""
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._clock = clock
        self._prune_interval = prune_interval
        self._next_prune: datetime | None = None
        self._sqlite_file = sqlite_path(engine.url)
        self._sqlite_identity = _file_identity(self._sqlite_file)
        # The jti insert and the card batches skip aiosqlite's thread hops on a SQLite file
        # (cds/store/sqlite_direct.py); on PostgreSQL the jti insert is one prepared statement
        # instead of four round trips through the engine (cds/store/pg_direct.py).
        self._direct = None if self._sqlite_file is None else DirectWrites(self._sqlite_file)
        target = direct_target(engine.url)
        direct = connection_budget(max_connections)[2]
        self._pg = None if target is None or not direct else PgDirect(target, max_size=direct)
        self._checkpoint: asyncio.Task[None] | None = None
        self._jti_insert = self._insert_new(SeenJti, "iss", "jti")
        self._jti_stored = stored_as(cast(Table, SeenJti.__table__))
        jti_columns, self._jti_bound = bound_as(cast(Table, SeenJti.__table__))
        self._jti_insert_pg = numbered(self._jti_insert.text, jti_columns)
        self._audit_insert = self._insert_or_skip(CardAudit, "card_uuid")
        # Idempotent, like the audit insert: a batch retried after a lost commit (cds/store/pg_direct.py)
        # finds its handles there. A handle is 256 random bits: no other row can share one.
        self._handle_insert = self._insert_or_skip(AppContextHandle, "handle")
        self._audit_stored = stored_as(cast(Table, CardAudit.__table__))
        self._handle_stored = stored_as(cast(Table, AppContextHandle.__table__))
        audit_columns, self._audit_bound = bound_as(cast(Table, CardAudit.__table__))
        handle_columns, self._handle_bound = bound_as(cast(Table, AppContextHandle.__table__))
        self._audit_insert_pg = numbered(self._audit_insert.text, audit_columns)
        self._handle_insert_pg = numbered(self._handle_insert.text, handle_columns)
        self._feedback_inserts: dict[int, TextClause] = {}

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        migrate: bool = True,
        clock: Callable[[], datetime] = utcnow,
        max_connections: int = MAX_CONNECTIONS,
    ) -> Store:
        """Connect to `url`; upgrade the schema to head (`migrate`) or insist it is there already
        (either way, a newer schema that still admits this release is used as it is).

        `clock` (tz-aware UTC) is read only when a method is given no `now`; tests pass their own.
        `max_connections` bounds the store's PostgreSQL connections (`connection_budget`).
        """
        engine = create_engine(url, max_connections)
        try:
            await (upgrade(engine) if migrate else check_schema(engine))
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine, clock=clock, max_connections=max_connections)

    async def close(self) -> None:
        if self._checkpoint is not None:
            await asyncio.gather(self._checkpoint, return_exceptions=True)
        if self._direct is not None:
            self._direct.close()
        if self._pg is not None:
            await self._pg.close()
        await self._engine.dispose()

    def _after_direct_write(self, direct: DirectWrites) -> None:
        """Checkpoint the WAL now and then on the async engine's thread: the direct connection
        never does (it would fsync in the event loop)."""
        if direct.checkpoint_due() and (self._checkpoint is None or self._checkpoint.done()):
            self._checkpoint = asyncio.create_task(self._checkpoint_wal(), name="wal-checkpoint")

    async def _checkpoint_wal(self) -> None:
        try:
            async with self._engine.connect() as connection:
                await connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except DATABASE_ERRORS as exc:  # housekeeping: the next one retries
            log.warning("store: WAL checkpoint failed (%s); will retry", type(exc).__name__)

    async def ready(self) -> str | None:
        """None when the database is reachable and this release may run on its schema (at head, or
        newer and admitting it), else why not (no PHI).

        A SQLite file deleted (or replaced) under the running service is caught by its path and
        inode: pooled connections keep reading the deleted file and would hide it."""
        if self._sqlite_file is not None:
            now = _file_identity(self._sqlite_file)
            if now is None:
                return "the SQLite database file is missing"
            if self._sqlite_identity is not None and now != self._sqlite_identity:
                return "the SQLite database file was replaced"
        try:
            fit, why = await schema_fit(self._engine)
        except DATABASE_ERRORS as exc:
            return f"the database is unreachable ({type(exc).__name__})"
        # Newer is ready: the old replicas of a rolling update keep serving on the schema the new
        # release's migration Job has just upgraded (cds/store/engine.py).
        return None if fit in (Fit.HEAD, Fit.NEWER) else why

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def _insert_or_skip(
        self,
        model: type[Base],
        *unique: str,
        returning: str | None = None,
        rows: int | None = None,
    ) -> TextClause:
        """`INSERT ... [ON CONFLICT (unique) DO NOTHING] [RETURNING returning]` into every column
        but `id` (no `unique`: a plain INSERT, a duplicate is an error); `rows`: that many rows,
        their parameters named `column_0` … `column_{rows-1}` (`numbered_rows`).

        Plain SQL, the same on both backends (SQLite ≥ 3.35 and PostgreSQL share the syntax), with
        each column's type bound (UTC instants, JSON through the store's serializer): SQLAlchemy
        2.0's dialect `insert().on_conflict_do_nothing()` has no cache key, so it was compiled anew
        on every call (≈ 0.15 ms of CPU per authenticated request for the jti insert alone); a
        text clause is compiled once and then served from the engine's statement cache."""
        quote = self._engine.dialect.identifier_preparer.quote
        columns = [c for c in model.__table__.c if not c.primary_key]
        names = (
            [[c.name for c in columns]]
            if rows is None
            else [[f"{c.name}_{n}" for c in columns] for n in range(rows)]
        )
        sql = (
            f"INSERT INTO {quote(model.__tablename__)} ({', '.join(quote(c.name) for c in columns)})"
            f" VALUES {', '.join('(' + ', '.join(':' + name for name in row) + ')' for row in names)}"
            + (
                f" ON CONFLICT ({', '.join(quote(name) for name in unique)}) DO NOTHING"
                if unique
                else ""
            )
            + (f" RETURNING {returning}" if returning else "")
        )
        return text(sql).bindparams(
            *(
                bindparam(name, type_=c.type)
                for row in names
                for c, name in zip(columns, row, strict=True)
            )
        )

    def _insert_new(self, model: type[Base], *unique: str) -> TextClause:
        """`INSERT ... ON CONFLICT (unique) DO NOTHING RETURNING id`: a row back when it was new."""
        return self._insert_or_skip(model, *unique, returning="id")

    # CH-25: jti replay cache -------------------------------------------------------------------

    async def remember(self, iss: str, jti: str, expires_at: datetime) -> bool:
        """True the first time (iss, jti) is seen, False for a replay (CH-25; `ReplayStore`).

        `expires_at` is the token's `exp` plus leeway: the row is kept until then, and pruned
        after (such a token fails its exp check anyway). Atomic across processes and replicas: the
        unique constraint decides. An empty or oversized jti (> 255) is AuthError("jti-invalid").
        """
        if not jti or len(jti) > JTI_MAX:
            raise AuthError("jti-invalid")
        if not iss or len(iss) > ISS_MAX:
            raise AuthError("iss-invalid")
        row = {"iss": iss, "jti": jti, "expires_at": _aware(expires_at, "expires_at")}
        # Every authenticated call pays this: the statement is built once and cached compiled
        # (`_insert_or_skip`), and on a SQLite file written without a thread hop when it can be.
        new = await self._insert_jti(row)
        await self._prune_now_and_then()
        return new

    async def _insert_jti(self, row: dict[str, Any]) -> bool:
        # The raw paths bind each value as the engine would (`stored_as`, `bound_as`; the same
        # statement: sqlite3 binds its `:name` parameters itself, asyncpg's are numbered);
        # tests/store/test_sqlite_direct.py and test_pg_direct.py compare the rows.
        if self._direct is not None:
            rows = self._direct.attempt_sql(self._jti_insert.text, self._jti_stored(row))
            if not isinstance(rows, Unavailable):
                self._after_direct_write(self._direct)
                return bool(rows)
        if self._pg is not None:
            new = await self._pg.fetchval(self._jti_insert_pg, *self._jti_bound(row))
            if not isinstance(new, Unavailable):
                return new is not None
        async with self._engine.begin() as connection:
            return (await connection.execute(self._jti_insert, row)).first() is not None

    async def _prune_now_and_then(self) -> None:
        now = self._clock()
        if self._next_prune is not None and now < self._next_prune:
            return
        self._next_prune = now + self._prune_interval  # before awaiting: one pruner per interval
        try:
            await self.prune(now)
        except SQLAlchemyError as exc:  # pruning is housekeeping: never fail an authenticated call
            metrics.DATABASE_ERRORS.labels("prune").inc()
            # The class only: the message can carry bound values.
            log.warning("store: pruning expired rows failed (%s); will retry", type(exc).__name__)

    async def prune(self, now: datetime | None = None) -> dict[str, int]:
        """Delete expired jti rows and appContext handles; the counts deleted, by table."""
        now = _aware(now or self._clock(), "now")
        counts: dict[str, int] = {}
        async with self._sessions.begin() as session:
            for model in (SeenJti, AppContextHandle):
                gone = await session.execute(delete(model).where(model.expires_at <= now))
                counts[model.__tablename__] = cast(CursorResult[Any], gone).rowcount
        return counts

    # CH-16: card audit -------------------------------------------------------------------------

    async def save_card(self, audit: CardAuditIn) -> None:
        """Record a card as sent. The first write of a card_uuid wins: a retried save is a no-op."""
        await self.save_cards([audit])

    async def save_cards(
        self, audits: list[CardAuditIn], handles: Iterable[HandleRow] = ()
    ) -> None:
        """Record cards as sent, and their appContext handles (`new_handle`), in one transaction
        (the write-behind queue's batches)."""
        handle_rows = list(handles)
        if not audits and not handle_rows:
            return
        now = self._clock()
        rows = []
        for audit in audits:
            # The fields as they are (`model_dump` would copy the ~35 kB of JSON values first, to
            # the same values: the JSON column serialises them either way).
            row = dict(audit)
            row["created_at"] = _aware(audit.created_at or now, "created_at")
            rows.append(row)
        if self._direct is not None:
            written = self._direct.attempt_many(
                [
                    (self._audit_insert.text, [self._audit_stored(row) for row in rows]),
                    (self._handle_insert.text, [self._handle_stored(h) for h in handle_rows]),
                ]
            )
            if not isinstance(written, Unavailable):
                self._after_direct_write(self._direct)
                return
        elif self._pg is not None:
            written = await self._pg.write_batches(
                [
                    (self._audit_insert_pg, [self._audit_bound(row) for row in rows]),
                    (self._handle_insert_pg, [self._handle_bound(h) for h in handle_rows]),
                ]
            )
            if not isinstance(written, Unavailable):
                return
        async with self._engine.begin() as connection:  # one executemany each, no ORM unit of work
            await connection.run_sync(self._write_cards, rows, handle_rows)

    def _write_cards(
        self, connection: Connection, rows: list[dict[str, Any]], handles: list[HandleRow]
    ) -> None:
        if rows:
            connection.execute(self._audit_insert, rows)
        if handles:
            connection.execute(self._handle_insert, handles)

    async def card(self, card_uuid: str) -> CardAuditOut | None:
        async with self._sessions() as session:
            found = await session.scalar(select(CardAudit).where(CardAudit.card_uuid == card_uuid))
        return None if found is None else CardAuditOut.model_validate(found)

    # CH-22: feedback ---------------------------------------------------------------------------

    async def save_feedback(
        self, service_id: str, items: list[FeedbackIn], now: datetime | None = None
    ) -> FeedbackResult:
        """Store a feedback batch idempotently on (card, outcome, outcomeTimestamp) (CH-22).

        Duplicates inside the batch and repeats of earlier batches are counted, not refused.
        Feedback on a card with no audit row is stored too, flagged `known_card=False`.
        """
        result = FeedbackResult()
        if not items:
            return result
        received = _aware(now or self._clock(), "now")
        async with self._sessions.begin() as session:
            known = await self._known_cards(session, sorted({item.card for item in items}))
            rows = [feedback_row(service_id, item, known, received) for item in items]
            while rows:
                # A few multi-row statements, not one per item: a 5 MiB batch (~40,000 items)
                # held SQLite's write lock for half a minute, failing every other call meanwhile.
                # Power-of-two sizes keep the distinct statements (each cached) to a handful.
                size = min(FEEDBACK_ROWS, 1 << (len(rows).bit_length() - 1))
                chunk, rows = rows[:size], rows[size:]
                stored = await session.scalars(self._feedback_insert(size), numbered_rows(chunk))
                for card in stored:
                    result.stored += 1
                    result.unknown_card += card not in known
        result.duplicate = len(items) - result.stored
        return result

    def _feedback_insert(self, rows: int) -> TextClause:
        """`rows` feedback items in one INSERT; a `card_uuid` back for each one new."""
        stmt = self._feedback_inserts.get(rows)
        if stmt is None:
            unique = ("card_uuid", "outcome", "outcome_timestamp")
            stmt = self._insert_or_skip(Feedback, *unique, returning="card_uuid", rows=rows)
            self._feedback_inserts[rows] = stmt
        return stmt

    @staticmethod
    async def _known_cards(session: AsyncSession, cards: list[str]) -> set[str]:
        # In slices: asyncpg takes at most 32,767 bound parameters in one statement.
        found: set[str] = set()
        for start in range(0, len(cards), FEEDBACK_ROWS):
            found.update(
                await session.scalars(
                    select(CardAudit.card_uuid).where(
                        CardAudit.card_uuid.in_(cards[start : start + FEEDBACK_ROWS])
                    )
                )
            )
        return found

    async def feedback_for(self, card_uuid: str) -> list[FeedbackOut]:
        """Every feedback item on one card, oldest outcome first."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(Feedback)
                .where(Feedback.card_uuid == card_uuid)
                .order_by(Feedback.outcome_timestamp, Feedback.id)
            )
            return [FeedbackOut.model_validate(row, from_attributes=True) for row in rows]

    async def feedback_report(
        self, service_id: str, since: datetime | None = None, until: datetime | None = None
    ) -> FeedbackReport:
        """Cards issued in [since, until) and the feedback on them, by band and override reason
        (cds/store/feedback_report.py)."""
        return await feedback_report(self._sessions, service_id, since, until)

    # SM-08: appContext handles -----------------------------------------------------------------

    def new_handle(
        self, card_uuid: str, state: dict[str, Any], ttl: timedelta, now: datetime | None = None
    ) -> HandleRow:
        """A fresh random handle (256 bits, URL-safe) to `state`, valid for `ttl` (SM-08), as the
        row `save_cards` writes: a hook call queues it with its card's audit row (write-behind)."""
        if ttl <= timedelta(0):
            raise ValueError(f"ttl must be positive, got {ttl}")
        created = _aware(now or self._clock(), "now")
        return {
            "handle": secrets.token_urlsafe(HANDLE_BYTES),
            "card_uuid": card_uuid,
            "created_at": created,
            "expires_at": created + ttl,
            "state": state,
        }

    async def create_handle(
        self, card_uuid: str, state: dict[str, Any], ttl: timedelta, now: datetime | None = None
    ) -> str:
        """`new_handle`, written now."""
        row = self.new_handle(card_uuid, state, ttl, now)
        await self.save_cards([], [row])
        return str(row["handle"])

    async def resolve_handle(
        self, handle: str, now: datetime | None = None
    ) -> dict[str, Any] | None:
        """The state behind `handle`, or None when it is unknown, malformed or expired (SM-08)."""
        if not HANDLE_SHAPE.fullmatch(handle):
            return None  # not one of ours: no database look-up
        at = _aware(now or self._clock(), "now")
        async with self._sessions() as session:
            state = await session.scalar(
                select(AppContextHandle.state).where(
                    AppContextHandle.handle == handle, AppContextHandle.expires_at > at
                )
            )
        return None if state is None else dict(state)

    # SM-03…SM-07: SMART app sessions -----------------------------------------------------------

    async def start_app_session(self, row: AppSessionRow) -> None:
        """Store a new session in `authorizing` with its OAuth state (SM-03)."""
        async with self._sessions.begin() as session:
            session.add(
                AppSession(
                    session_hash=row.session_hash,
                    iss=row.iss,
                    state=row.state,
                    status=row.status,
                    created_at=_aware(row.created_at, "created_at"),
                    expires_at=_aware(row.expires_at, "expires_at"),
                    context=row.context,
                    secret=row.secret,
                )
            )

    async def claim_app_session(
        self, session_hash: str, state: str, now: datetime | None = None
    ) -> AppSessionRow | None:
        """The authorizing session bound to (cookie, state), claimed once (SM-03).

        One UPDATE clears the state and moves the row to `exchanging`, so a replayed or concurrent
        callback with the same state finds nothing: a code is exchanged at most once by us.
        """
        at = _aware(now or self._clock(), "now")
        table = AppSession.__table__
        stmt = (
            update(AppSession)
            .where(
                AppSession.session_hash == session_hash,
                AppSession.state == state,
                AppSession.status == "authorizing",
                AppSession.expires_at > at,
            )
            .values(state=None, status="exchanging")
            .returning(*table.c)
        )
        async with self._sessions.begin() as session:
            found = (await session.execute(stmt)).mappings().first()
        return None if found is None else _app_session(dict(found))

    async def activate_app_session(
        self, session_hash: str, context: dict[str, Any], secret: str, expires_at: datetime
    ) -> None:
        """Store the launch context and the encrypted tokens of a claimed session (SM-06)."""
        stmt = (
            update(AppSession)
            .where(AppSession.session_hash == session_hash)
            .values(
                status="active",
                context=context,
                secret=secret,
                expires_at=_aware(expires_at, "expires_at"),
            )
        )
        async with self._sessions.begin() as session:
            await session.execute(stmt)

    async def prune_app_sessions(self, now: datetime | None = None) -> int:
        """Delete expired app sessions (their encrypted tokens with them) and expired Save locks
        (left by a process that stopped mid-save); the count of sessions deleted."""
        at = _aware(now or self._clock(), "now")
        async with self._sessions.begin() as session:
            result = await session.execute(delete(AppSession).where(AppSession.expires_at <= at))
            await session.execute(delete(AppSaveLock).where(AppSaveLock.expires_at <= at))
        return int(cast(CursorResult[Any], result).rowcount or 0)

    async def acquire_save_lock(
        self, session_hash: str, holder: str, ttl: timedelta, now: datetime | None = None
    ) -> bool:
        """True when `holder` now holds the session's Save slot (until released or `ttl` passed).

        One statement, atomic on both backends and across replicas: insert the row, or take over
        one whose holder let it expire; a live lock held by anyone (`holder` included) → False.
        """
        if ttl <= timedelta(0):
            raise ValueError(f"ttl must be positive, got {ttl}")
        at = _aware(now or self._clock(), "now")
        row = {
            "session_hash": session_hash,
            "holder": holder,
            "acquired_at": at,
            "expires_at": at + ttl,
        }
        dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
        stmt = (
            dialect.insert(AppSaveLock)
            .values(row)
            .on_conflict_do_update(
                index_elements=["session_hash"],
                set_={k: v for k, v in row.items() if k != "session_hash"},
                where=AppSaveLock.expires_at <= at,
            )
            .returning(AppSaveLock.id)
        )
        async with self._sessions.begin() as session:
            return (await session.execute(stmt)).first() is not None

    async def release_save_lock(self, session_hash: str, holder: str) -> bool:
        """Release the slot if `holder` still holds it (not when it expired and was taken over)."""
        stmt = delete(AppSaveLock).where(
            AppSaveLock.session_hash == session_hash, AppSaveLock.holder == holder
        )
        async with self._sessions.begin() as session:
            result = await session.execute(stmt)
        return bool(cast(CursorResult[Any], result).rowcount)

    async def app_session(self, session_hash: str) -> AppSessionRow | None:
        """The session row, expired or not (the app says "expired" rather than "unknown")."""
        async with self._sessions() as session:
            row = await session.scalar(
                select(AppSession).where(AppSession.session_hash == session_hash)
            )
        if row is None:
            return None
        return _app_session({c.name: getattr(row, c.name) for c in AppSession.__table__.c})


def _app_session(values: dict[str, Any]) -> AppSessionRow:
    return AppSessionRow(
        session_hash=values["session_hash"],
        iss=values["iss"],
        status=values["status"],
        created_at=values["created_at"],
        expires_at=values["expires_at"],
        secret=values["secret"],
        state=values["state"],
        context=dict(values["context"]),
    )
