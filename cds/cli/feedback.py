"""`cto-cds feedback report`: what clinicians did with the cards of a period, for quality officers.

The service stores each card's audit row and the feedback the EHR sends on it (CH-22); this reads
them back as aggregates (cds/store/feedback_report.py): cards by Operator-CTO band, accepted and
overridden per band with the override rate, and the override reasons by name. Nothing about a
patient, an order, an operator or a comment is printed. An edge like `cds.cli`: a bad date or an
unreachable database is one line on stderr and exit code 2.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cds.cli.errors import fail
from cds.errors import CdsError, ConfigError

if TYPE_CHECKING:
    from cds.store.feedback_report import BandRow, FeedbackReport

feedback_app = typer.Typer(
    help="What clinicians did with the cards (the feedback the service stored; "
    "CTO_CDS_DATABASE_URL).",
    no_args_is_help=True,
)

_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _day(option: str, text: str | None) -> date | None:
    if text is None:
        return None
    try:
        if _DAY.fullmatch(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    return fail(f"{option}: {json.dumps(text)[:60]} is not a date YYYY-MM-DD")


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _reason_names(local_system: str) -> dict[str, str]:
    """`system|code` → the words the card offered, for this service's own override reasons."""
    from cds.output.cards import OVERRIDE_REASONS
    from cds.store.rows import reason_key

    return {reason_key(local_system, code): words for code, words in OVERRIDE_REASONS}


async def _read(
    url: str, service: str, since: datetime | None, until: datetime | None
) -> FeedbackReport:
    from sqlalchemy.engine import make_url

    from cds.cli.db import shown_url
    from cds.store import Store
    from cds.store.engine import START_ERRORS, describe, sqlite_path

    file = sqlite_path(make_url(url))
    if file is not None and not Path(file).is_file():  # a report must not create an empty database
        raise ConfigError(f"CTO_CDS_DATABASE_URL: no database file at {file}")
    try:
        store = await Store.open(url, migrate=False)
    except START_ERRORS as exc:
        raise ConfigError(
            f"CTO_CDS_DATABASE_URL: cannot use the database at {shown_url(url)} ({describe(exc)})"
        ) from None
    try:
        return await store.feedback_report(service, since, until)
    except START_ERRORS as exc:
        raise ConfigError(
            f"CTO_CDS_DATABASE_URL: cannot read the database at {shown_url(url)} ({describe(exc)})"
        ) from None
    finally:
        await store.close()


def _rate(overridden: int, answered: int) -> str:
    from cds.output.wording import percent

    return percent(overridden / answered) if answered else "–"


def _bands_in_order(report: FeedbackReport) -> list[BandRow]:
    from cds.scoring.scores.operator_cto import OPERATOR_CTO

    order = {band.id: i for i, band in enumerate(OPERATOR_CTO.bands)}
    return sorted(report.by_band, key=lambda row: (order.get(row.band, len(order)), row.band))


def _period(since: date | None, until: date | None) -> str:
    if since is None and until is None:
        return "all cards in the database"
    return f"cards issued {since or 'from the first'} to {until or 'the last'} (UTC days)"


def _print(
    report: FeedbackReport, names: dict[str, str], since: date | None, until: date | None
) -> None:
    print(f"{report.service_id}: {_period(since, until)}")
    print(f"{report.cards} cards, {report.cards_with_feedback} with feedback")
    header = ("band", "cards", "with feedback", "accepted", "overridden", "override rate")
    rows = [
        (r.band, r.cards, r.cards_with_feedback, r.accepted, r.overridden)
        for r in _bands_in_order(report)
    ]
    rows.append(
        ("all", report.cards, report.cards_with_feedback, report.accepted, report.overridden)
    )
    table = [header] + [(*(str(v) for v in row), _rate(row[4], row[3] + row[4])) for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for line in table:
        cells = [line[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(line[1:], widths[1:], strict=True)
        ]
        print("  ".join(cells).rstrip())
    if report.by_override_reason:
        print("override reasons:")
        for reason in report.by_override_reason:
            words = names.get(reason.reason)
            label = f"{words} ({reason.reason.rsplit('|', 1)[-1]})" if words else reason.reason
            print(f"  {reason.overridden:>5}  {label}")
    if report.unknown_card:
        print(
            f"{report.unknown_card} feedback items received in the period name a card this "
            "database never issued (another service's, or its audit row was pruned)"
        )


@feedback_app.command("report")
def report(
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="YYYY-MM-DD", help="First day of cards counted (UTC)."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", metavar="YYYY-MM-DD", help="Last day of cards counted (UTC)."),
    ] = None,
    service: Annotated[
        str, typer.Option("--service", metavar="ID", help="The CDS service's id.")
    ] = "operator-cto",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Cards issued in a period by Operator-CTO band and the feedback on them: accepted,
    overridden, the override rate per band and the override reasons (aggregates only)."""
    first, last = _day("--since", since), _day("--until", until)
    if first is not None and last is not None and first > last:
        fail(f"--since {first} is after --until {last}")
    start = None if first is None else _midnight(first)
    end = None if last is None else _midnight(last + timedelta(days=1))
    try:
        from cds.mapping.tables import load_tables
        from cds.settings import load_settings

        settings = load_settings()
        names = _reason_names(load_tables(settings.mappings_dir).rules.local_system)
        found = asyncio.run(_read(settings.database_url, service, start, end))
    except CdsError as exc:
        fail(str(exc))
    if as_json:
        body = found.model_dump(mode="json")
        for reason in body["by_override_reason"]:
            reason["display"] = names.get(reason["reason"])
        body["by_band"] = [row.model_dump() for row in _bands_in_order(found)]
        print(json.dumps(body, ensure_ascii=False, indent=2))
        return
    _print(found, names, first, last)
