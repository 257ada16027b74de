"""Operator CTO-PCI experience: site registry → override Observations → derived from history.

The first path that gives a value wins, per input, and the path is reported in `rule`
(`operator.registry`, the override row id, `operator.derived`). Derivation follows Xiao 2021 §2.2 and
docs/spec/inputs.md: years from the first CTO-PCI as primary operator to the order date (whole
years, a remainder of more than 6 months adds one), annual volume = all CTO-PCIs ÷ those years,
last-year success = technical successes ÷ CTO-PCIs in the 365 days before the order date.

An incomplete history (timed out, truncated at the resource cap, a server that did not answer the
query) gives no derived value at all: a count of what was read is not the operator's volume, and
"no CTO-PCI in the last year" may only mean the read stopped early. A high-volume operator hits the
cap without any slowness, so the site registry (mappings operators.csv) is the first source.

Reading the history (which Procedures are this operator's primary CTO-PCIs, when, with what outcome)
does not depend on the patient or the order date; only the counting does. A batch run maps thousands
of records against the same few histories, so it keeps the reading per operator (`OperatorHistories`)
and counts per order: the count is linear in the history, the reading costs table look-ups.

The history is read so that it scales to a 20-year career (`history_planner`): the career search asks
only for this operator's CTO-PCIs (the `cto_pci` codes of the tables, every spelling of their system)
performed before the order date + 2 days (a margin for time zones: the day itself is re-checked
here), trimmed to the elements read below. When the tables hold a code a token search cannot express
(a prefix row, an ICD-CM code compared without its dot), the code filter is dropped: the server
returns every Procedure of the operator and the tables decide, as before.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from operator import is_

from cds.mapping.codes import ALIASES, NPI, is_dotless
from cds.mapping.findings import OPERATOR_INPUTS, observation_candidates, resolve
from cds.mapping.matching import (
    counts,
    day_of,
    is_cto_pci,
    outcome_is,
    outcome_meanings,
    success_meanings,
)
from cds.mapping.order import index_day
from cds.mapping.provenance import MappedInput, unknown
from cds.mapping.tables import MappingTables
from cds.sources.record import PatientRecord
from cds.sources.resources import Procedure, ServiceRequest, points_to
from cds.sources.searches import HistoryFilter

HISTORY_MARGIN_DAYS = 2
"""Days past the order date the career search reaches (time zones; the day is re-checked here)."""

_REGISTRY_FIELDS = {
    "operator_annual_cto_volume": "annual_cto_volume",
    "operator_cto_years": "cto_years",
    "operator_last_year_success_rate": "last_year_success_rate",
}


def _add_months(day: date, months: int) -> date:
    year, month = divmod(day.month - 1 + months, 12)
    target_year, target_month = day.year + year, month + 1
    if target_year > date.max.year:  # past the calendar: later than any index date
        return date.max
    for candidate in (day.day, 30, 29, 28):
        try:
            return date(target_year, target_month, min(day.day, candidate))
        except ValueError:
            continue
    raise ValueError(day)  # pragma: no cover - 28 always exists


def practice_years(first: date, index: date, round_up_after_months: int = 6) -> int:
    """Whole years from `first` to `index`; a remainder of more than N months counts as a year."""
    years = index.year - first.year - ((index.month, index.day) < (first.month, first.day))
    if _add_months(first, 12 * years + round_up_after_months) < index:
        years += 1
    return max(years, 0)


def career_codes(tables: MappingTables) -> tuple[tuple[str, str], ...]:
    """(system, code) of every enabled CTO-PCI Procedure code, each system in every spelling the
    tables accept (URI and urn:oid); empty when one cannot be a token (prefix or dotless ICD-CM)."""
    rows = [
        r
        for r in tables.rows
        if r.enabled and r.concept == "cto_pci" and r.element == "code"
        if r.resource in ("Procedure", "*")
    ]
    if any(r.match != "exact" or is_dotless(r.system) for r in rows):
        return ()
    spellings = {r.system: [r.system] for r in rows}
    for alias, system in ALIASES.items():
        if system in spellings:
            spellings[system].append(alias)
    return tuple(
        dict.fromkeys((spelling, r.code) for r in rows for spelling in spellings[r.system])
    )


def history_planner(
    tables: MappingTables, today: date
) -> Callable[[ServiceRequest | None], HistoryFilter]:
    """The career search's filter for an order; with no order known yet, codes only."""
    codes = tables.derived("career_codes", career_codes)  # a scan of every row: once, not per call

    def plan(order: ServiceRequest | None) -> HistoryFilter:
        if order is None:
            return HistoryFilter(codes)
        day = index_day(order, today)
        # An order dated at the calendar's end (9999-12-31) raised OverflowError: a 500 at the hook.
        before = day + min(timedelta(days=HISTORY_MARGIN_DAYS), date.max - day)
        return HistoryFilter(codes, before)

    return plan


def _npi(record: PatientRecord) -> str | None:
    if record.operator is None:
        return None
    for ident in record.operator.identifier:
        if ident.system == NPI and ident.value:
            return ident.value
    return None


def _is_primary(tables: MappingTables, proc: Procedure, operator_id: str) -> bool:
    wanted = set(tables.rules.operator.primary_function_codes)
    who = f"Practitioner/{operator_id}"
    for performer in proc.performer:
        ref = performer.actor.reference if performer.actor else None
        if ref is None or not points_to(ref, who):
            continue
        if not wanted:
            return True
        codes = {c.code for c in (performer.function.coding if performer.function else [])}
        if not codes or codes & wanted:
            return True
    return False


@dataclass(frozen=True)
class Case:
    """One dated primary CTO-PCI of the operator, as the derivation counts it."""

    day: date
    ref: str
    outcomes: frozenset[str]
    """Outcome meanings its outcome code maps to (empty: no recorded outcome)."""


def history_cases(
    tables: MappingTables, procedures: Sequence[Procedure], operator_id: str
) -> tuple[Case, ...]:
    """The operator's dated primary CTO-PCIs in record order (independent of the order date)."""
    cases = []
    for p in procedures:
        if not (
            counts(p)
            and p.status in (None, "completed", "stopped", "unknown")
            and is_cto_pci(tables, "Procedure", p.code)
            and _is_primary(tables, p, operator_id)
        ):
            continue
        day = day_of(p)
        if day is None:
            continue
        cases.append(Case(day, p.ref, outcome_meanings(tables, p)))
    return tuple(cases)


@dataclass(frozen=True)
class Timeline:
    """An operator's cases in record order (the sources cited) and by day, with running counts,
    so that counting them against an order date costs two bisections, not a pass per order."""

    cases: tuple[Case, ...]
    days: tuple[date, ...]
    """Every case's day, ascending."""
    no_outcome: tuple[int, ...]
    """`no_outcome[i]`: cases among the first i by day without a usable outcome: none recorded, or
    codings that conflict (`outcome_is`)."""
    conflicting: tuple[int, ...]
    """`conflicting[i]`: those of them whose codings conflict (the note says so)."""
    successes: tuple[int, ...]
    """`successes[i]`: cases among the first i by day whose outcome counts as a success."""
    _refs: dict[tuple[int, int, int], tuple[str, ...]] = field(
        default_factory=dict, compare=False, repr=False
    )
    """`refs` answers by (first, end) position in `days`, which decide the cases in [low, high):
    a batch asks a kept timeline again for each order (a pass over ≈ 290 cases each time)."""

    @classmethod
    def of(cls, cases: tuple[Case, ...], good: frozenset[str]) -> Timeline:
        by_day = sorted(cases, key=lambda c: c.day)
        no_outcome, conflicting, successes = [0], [0], [0]
        for case in by_day:
            success = outcome_is(case.outcomes, good)
            no_outcome.append(no_outcome[-1] + (success is None))
            conflicting.append(conflicting[-1] + (success is None and bool(case.outcomes)))
            successes.append(successes[-1] + (success is True))
        days = tuple(c.day for c in by_day)
        return cls(cases, days, tuple(no_outcome), tuple(conflicting), tuple(successes))

    def refs(self, low: date | None, high: date, limit: int = 20) -> list[str]:
        """The first `limit` cases dated in [low, high), in record order."""
        first = 0 if low is None else bisect_left(self.days, low)
        key = (first, bisect_left(self.days, high), limit)
        kept = self._refs.get(key)
        if kept is None:
            if len(self._refs) >= 4096:
                self._refs.clear()
            kept = self._refs[key] = tuple(self._refs_in(low, high, limit))
        return list(kept)

    def _refs_in(self, low: date | None, high: date, limit: int) -> list[str]:
        found: list[str] = []
        for case in self.cases:
            if case.day < high and (low is None or case.day >= low):
                found.append(case.ref)
                if len(found) == limit:
                    break
        return found


@dataclass(frozen=True)
class _Read:
    procedures: tuple[Procedure, ...]
    timeline: Timeline


class OperatorHistories:
    """`history_cases` of the last few operators read, for one set of mapping tables.

    An entry is reused only for a record holding the very same parsed Procedure objects (the batch
    source hands every patient of an operator the same parsed history), so a reading kept here can
    never stand for another history. Bounded: `size` operators, least recently used evicted."""

    def __init__(self, tables: MappingTables, size: int = 16) -> None:
        self.tables = tables
        self._size = size
        self._items: OrderedDict[str, _Read] = OrderedDict()

    def cases(self, procedures: Sequence[Procedure], operator_id: str) -> tuple[Case, ...]:
        return self.timeline(procedures, operator_id).cases

    def timeline(self, procedures: Sequence[Procedure], operator_id: str) -> Timeline:
        kept = self._items.get(operator_id)
        if (
            kept is not None
            and len(kept.procedures) == len(procedures)
            and all(map(is_, kept.procedures, procedures))  # in C: hundreds per order
        ):
            self._items.move_to_end(operator_id)
            return kept.timeline
        cases = history_cases(self.tables, procedures, operator_id)
        read = _Read(tuple(procedures), Timeline.of(cases, success_meanings(self.tables)))
        self._items[operator_id] = read
        self._items.move_to_end(operator_id)
        if len(self._items) > self._size:
            self._items.popitem(last=False)
        return read.timeline


def derived(
    record: PatientRecord,
    tables: MappingTables,
    index_date: date,
    histories: OperatorHistories | None = None,
) -> dict[str, MappedInput]:
    """Experience derived from the operator's CTO-PCI Procedures in the FHIR record."""
    operator_id = record.operator_id
    rule = "operator.derived"
    if operator_id is None:
        return {}
    if histories is not None and histories.tables is tables:
        timeline = histories.timeline(record.operator_procedures, operator_id)
    else:
        cases = history_cases(tables, record.operator_procedures, operator_id)
        timeline = Timeline.of(cases, success_meanings(tables))
    days = timeline.days
    dated = bisect_left(days, index_date)  # cases before the order date
    failure = record.incomplete.get("operator_procedures")
    if failure:
        why = f"the operator's procedure history was not read completely ({failure})"
        return {name: unknown(rule, why) for name in OPERATOR_INPUTS}
    if not dated:
        why = "no CTO-PCI by this operator in the record"
        return {name: unknown(rule, why) for name in OPERATOR_INPUTS}
    lower_bound = "the EHR history may be incomplete: a lower bound"
    first = days[0]
    rules = tables.rules.operator
    years = practice_years(first, index_date, rules.round_up_after_months)
    refs = timeline.refs(None, index_date)
    out = {
        "operator_cto_years": MappedInput(
            value=years,
            sources=list(refs),
            rule=rule,
            evidence="patient",
            note=f"first CTO-PCI {first.isoformat()}; {lower_bound}",
        ),
        "operator_annual_cto_volume": MappedInput(
            value=dated / max(years, 1),
            sources=list(refs),
            rule=rule,
            evidence="patient",
            note=f"{dated} CTO-PCIs over {max(years, 1)} year(s); {lower_bound}",
        ),
    }
    # An order dated in year 1 has no last year before it: the window starts at date.min.
    start = index_date - min(timedelta(days=rules.last_year_days), index_date - date.min)
    low = min(bisect_left(days, start), dated)  # the last year: [start, order date)
    last_year = dated - low
    missing = timeline.no_outcome[dated] - timeline.no_outcome[low]
    if not last_year:
        out["operator_last_year_success_rate"] = unknown(
            rule, "no CTO-PCI by this operator in the last year"
        )
    elif missing:
        conflicts = timeline.conflicting[dated] - timeline.conflicting[low]
        why = f"{missing} of {last_year} last-year CTO-PCIs have no recorded outcome"
        if conflicts:
            why = (
                f"{missing} of {last_year} last-year CTO-PCIs have no usable outcome"
                f" ({conflicts} with outcome codes that conflict: success and not)"
            )
        out["operator_last_year_success_rate"] = unknown(
            rule, why, timeline.refs(start, index_date)
        )
    else:
        successes = timeline.successes[dated] - timeline.successes[low]
        out["operator_last_year_success_rate"] = MappedInput(
            value=successes / last_year,
            sources=timeline.refs(start, index_date),
            rule=rule,
            evidence="patient",
            note=f"{successes} of {last_year} successful in the last year",
        )
    return out


def operator_inputs(
    record: PatientRecord,
    tables: MappingTables,
    index_date: date,
    histories: OperatorHistories | None = None,
) -> dict[str, MappedInput]:
    """The three experience inputs, each from the first path that has it."""
    if record.operator_id is None:
        return {
            name: unknown("operator", "the order names no operator (performer)")
            for name in OPERATOR_INPUTS
        }
    result: dict[str, MappedInput] = {}
    npi = _npi(record)
    entry = tables.operator_entry(npi, record.operator_id)
    passed_over = None
    if entry is not None and _after_the_order(entry.as_of, index_date):
        # Figures checked over a year after the procedure count later cases (a validation on
        # past cases): the operator's own history at the time tells their experience then.
        passed_over = (
            f"site registry {entry.origin} is as of {entry.as_of}, over a year after this "
            "order: not used"
        )
        entry = None
    if entry is not None:
        ref = f"Practitioner/{record.operator_id}"
        for name, attribute in _REGISTRY_FIELDS.items():
            value = getattr(entry, attribute)
            if value is not None:
                result[name] = MappedInput(
                    value=value,
                    sources=[ref],
                    rule="operator.registry",
                    evidence="patient",
                    note=f"site registry {entry.origin}"
                    + (f", as of {entry.as_of}" if entry.as_of else ""),
                )
    skipped: list[str] = []
    overrides = observation_candidates(
        tables, record.operator_observations, OPERATOR_INPUTS, None, skipped
    )
    for name in OPERATOR_INPUTS:
        if name not in result:
            found = resolve(name, overrides)
            if found is not None and found.value is not None:
                result[name] = found
    missing = [n for n in OPERATOR_INPUTS if n not in result]
    if missing:
        derivation = derived(record, tables, index_date, histories)
        for name in missing:
            result[name] = derivation.get(name) or unknown(
                "operator.derived", "no operator history"
            )
    if passed_over is not None:
        for name, mapped in result.items():
            note = f"{passed_over}; {mapped.note}" if mapped.note else passed_over
            result[name] = mapped.model_copy(update={"note": note})
    return result


REGISTRY_SPAN = timedelta(days=365)
"""A registry row's figures describe the operator from a year before its `as_of` on (the last-year
success rate's own window): an order dated earlier than that is not scored with them."""


def _after_the_order(as_of: str | None, index_date: date) -> bool:
    """Whether a registry row was checked over a year after the order (no `as_of`: never)."""
    return as_of is not None and index_date < date.fromisoformat(as_of) - REGISTRY_SPAN
