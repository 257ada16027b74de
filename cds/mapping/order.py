"""The CTO-PCI order: which one, its date (the index date), its target vessel (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from cds.errors import ContextError
from cds.mapping.matching import counts, is_cto_pci, names_ostium, rows_for
from cds.mapping.provenance import MappedInput, unknown
from cds.mapping.tables import MappingTables
from cds.sources.record import PatientRecord
from cds.sources.resources import ServiceRequest, instant_day

_OPEN_ORDER = {"draft", "active", "on-hold"}


@dataclass(frozen=True)
class OrderContext:
    order: ServiceRequest | None
    index_date: date
    target_vessel: MappedInput
    ostial: MappedInput | None
    note: str | None = None

    @property
    def target(self) -> str | None:
        """The target vessel group (LAD, LCX, ...) when known."""
        value = self.target_vessel.value
        return value if isinstance(value, str) else None


def find_order(
    record: PatientRecord, tables: MappingTables
) -> tuple[ServiceRequest | None, str | None]:
    """The order given by the hook or CLI (no note), else the patient's most recent open CTO-PCI
    order, with a note saying how it was chosen."""
    if record.order is not None:
        return record.order, None
    candidates = [
        o
        for o in record.orders
        if counts(o) and o.status in _OPEN_ORDER and is_cto_pci(tables, "ServiceRequest", o.code)
    ]
    if not candidates:
        return None, "no open CTO-PCI order in the record"
    candidates.sort(key=lambda o: o.authoredOn or "", reverse=True)
    return candidates[0], "most recent open CTO-PCI order"


def index_day(order: ServiceRequest | None, today: date) -> date:
    """The order date the scores are computed for (authored, else planned), else today.

    Raises:
        ContextError: naming the element, for a date in the calendar's last year (9999): every
            count up to it and past it (the career search's margin, the operator's practice
            years, the patient's age of 8,000 years) is nonsense or overflows.
    """
    if order is None:
        return today
    element = "authoredOn" if order.authoredOn else "occurrenceDateTime"
    when = order.authoredOn or order.occurrenceDateTime
    if not when:
        return today
    day = instant_day(when)
    if day.year == date.max.year:
        raise ContextError(
            f"{order.ref}.{element}", f"{when!r} is at the end of the calendar: not an order date"
        )
    return day


def order_context(record: PatientRecord, tables: MappingTables, today: date) -> OrderContext:
    order, how = find_order(record, tables)
    if order is None:
        return OrderContext(
            order=None,
            index_date=today,
            target_vessel=unknown(
                "order.target_vessel", "no CTO-PCI order to read the vessel from"
            ),
            ostial=None,
            note=how,
        )
    index_date = index_day(order, today)
    source = [order.ref]
    rows = [
        r
        for r in rows_for(tables, "ServiceRequest", "bodySite", order.bodySite)
        if r.concept == "vessel"
    ]
    groups = sorted({r.meaning for r in rows})
    if len(groups) == 1:
        vessel = MappedInput(
            value=groups[0],
            sources=source,
            rule=rows[0].id,
            evidence="lesion",
            note="from the order's body site",
        )
    elif groups:
        vessel = unknown(
            "order.target_vessel", f"order names several vessels: {', '.join(groups)}", source
        )
    else:
        vessel = unknown(
            "order.target_vessel", "order has no body site in the vessel table", source
        )
    ostial = None
    if names_ostium(tables, "ServiceRequest", order.bodySite):
        ostial = MappedInput(
            value=True,
            sources=source,
            rule="order.ostium",
            evidence="lesion",
            note="the order's body site is an ostium",
        )
    return OrderContext(
        order=order,
        index_date=index_date,
        target_vessel=vessel,
        ostial=ostial,
        note=how,
    )
