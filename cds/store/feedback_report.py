"""What clinicians did with the cards of a period, for quality officers (`cto-cds feedback report`).

The cards issued in the period (their audit rows, by `created_at`) are counted by their Operator-CTO
band, and the feedback the EHR sent on them (CH-22) by outcome and override reason — per band, so an
override rate that rises in one band (clinicians disagreeing with "easy" for their operators, say)
shows. Aggregates only: no patient, order, operator or comment leaves the database. Computed by the
database (GROUP BY over a JSON path into the stored scores), so a year of cards is not read into the
process.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Select, String, and_, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from cds.store.models import CardAudit, Feedback
from cds.store.rows import reason_key

UNDETERMINED = "undetermined"
"""The band of a card whose unknown inputs left more than one Operator-CTO band possible."""


class BandRow(BaseModel):
    band: str
    cards: int
    cards_with_feedback: int = 0
    accepted: int = 0
    overridden: int = 0


class ReasonRow(BaseModel):
    reason: str
    """`system|code` of the override reason, or "(no reason code)"."""
    overridden: int


class FeedbackReport(BaseModel):
    service_id: str
    since: datetime | None
    until: datetime | None
    cards: int
    cards_with_feedback: int
    accepted: int
    overridden: int
    by_band: list[BandRow] = Field(default_factory=list)
    by_override_reason: list[ReasonRow] = Field(default_factory=list)
    unknown_card: int = 0
    """Feedback received in the period for a card with no audit row (another service's, or one
    whose row was pruned): not in the counts above."""


def _band() -> ColumnElement[str]:
    # JSON null (an undetermined band) and a missing key are both SQL NULL on SQLite and PostgreSQL.
    path = CardAudit.scores[("operator_cto", "band")].as_string()
    return func.coalesce(path, UNDETERMINED, type_=String)


def _in_period(
    column: InstrumentedAttribute[datetime], since: datetime | None, until: datetime | None
) -> ColumnElement[bool]:
    parts: list[ColumnElement[bool]] = []
    if since is not None:
        parts.append(column >= since)
    if until is not None:
        parts.append(column < until)
    return and_(true(), *parts)


def _joined(service_id: str, since: datetime | None, until: datetime | None) -> Select[tuple[()]]:
    """Feedback on this service's cards issued in the period."""
    return (
        select()
        .select_from(Feedback)
        .join(CardAudit, CardAudit.card_uuid == Feedback.card_uuid)
        .where(
            Feedback.service_id == service_id,
            CardAudit.service_id == service_id,
            _in_period(CardAudit.created_at, since, until),
        )
    )


async def feedback_report(
    sessions: async_sessionmaker[AsyncSession],
    service_id: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> FeedbackReport:
    """Cards issued in [since, until) and the feedback on them, by band and override reason."""
    band = _band()
    rows: dict[str, BandRow] = {}
    async with sessions() as session:
        issued = await session.execute(
            select(band, func.count())
            .where(
                CardAudit.service_id == service_id,
                _in_period(CardAudit.created_at, since, until),
            )
            .group_by(band)
        )
        for name, cards in issued.tuples():
            rows[name] = BandRow(band=name, cards=cards)
        outcomes = await session.execute(
            _joined(service_id, since, until)
            .add_columns(band, Feedback.outcome, func.count())
            .group_by(band, Feedback.outcome)
        )
        for name, outcome, n in outcomes.tuples():
            row = rows.setdefault(name, BandRow(band=name, cards=0))
            setattr(row, outcome, getattr(row, outcome) + n)
        answered = await session.execute(
            _joined(service_id, since, until)
            .add_columns(band, func.count(func.distinct(Feedback.card_uuid)))
            .group_by(band)
        )
        for name, n in answered.tuples():
            rows[name].cards_with_feedback = n
        reasons = await session.execute(
            _joined(service_id, since, until)
            .add_columns(Feedback.reason_system, Feedback.reason_code, func.count())
            .where(Feedback.outcome == "overridden")
            .group_by(Feedback.reason_system, Feedback.reason_code)
        )
        by_reason: dict[str, int] = {}
        for system, code, n in reasons.tuples():
            key = reason_key(system, code)
            by_reason[key] = by_reason.get(key, 0) + n
        unknown = await session.scalar(
            select(func.count()).where(
                Feedback.service_id == service_id,
                Feedback.known_card.is_(False),
                _in_period(Feedback.received_at, since, until),
            )
        )
    bands = sorted(rows.values(), key=lambda r: (r.band == UNDETERMINED, r.band))
    return FeedbackReport(
        service_id=service_id,
        since=since,
        until=until,
        cards=sum(r.cards for r in bands),
        cards_with_feedback=sum(r.cards_with_feedback for r in bands),
        accepted=sum(r.accepted for r in bands),
        overridden=sum(r.overridden for r in bands),
        by_band=bands,
        by_override_reason=[
            ReasonRow(reason=k, overridden=v)
            for k, v in sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        unknown_card=unknown or 0,
    )
