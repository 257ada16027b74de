"""A batch run reads each operator's history once (`OperatorHistories`) and counts it per order.

The kept reading must give exactly what reading the record afresh gives, and must never be reused for
a different history (other Procedure objects, another length, other tables)."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, timedelta

from cds.mapping.operator import OperatorHistories, derived, history_cases, practice_years
from cds.mapping.tables import MappingTables, load_tables
from cds.sources.record import Fetched, PatientRecord, assemble
from cds.sources.resources import Procedure, parse_resource
from tests.mapping.fhir import CPT, FAILURE, SUCCESS, procedure

TABLES = load_tables()


def _history(outcome: str = SUCCESS) -> tuple[Procedure, ...]:
    raws = [
        procedure("h1", CPT, "92943", when="2019-03-01", outcome=SUCCESS, performer="dr1"),
        procedure("h2", CPT, "92943", when="2026-02-01", outcome=outcome, performer="dr1"),
        procedure("h3", CPT, "92943", when="2026-05-01", outcome=None, performer="dr1"),
        procedure("h4", CPT, "92943", when="2026-11-01", outcome=FAILURE, performer="dr1"),
        procedure("x1", CPT, "92943", when="2026-03-01", outcome=SUCCESS, performer="dr2"),
        procedure("h5", CPT, "92943", when=None, outcome=SUCCESS, performer="dr1"),
    ]
    parsed = [parse_resource(r) for r in raws]
    assert all(isinstance(p, Procedure) for p in parsed)
    return tuple(p for p in parsed if isinstance(p, Procedure))


def _record(history: tuple[Procedure, ...]) -> PatientRecord:
    # exhaustive: dr2's Procedure is a stray the server returned, filtered out (not "incomplete").
    fetched = Fetched("operator_procedures", parsed=history, exhaustive=True)
    record = assemble(
        {"operator_procedures": fetched}, PatientRecord(patient_id="p1", operator_id="dr1")
    )
    assert record.complete("operator_procedures")
    assert len(record.operator_procedures) == 5
    return record


def test_history_cases_keep_the_operators_dated_primary_cto_pcis_in_order() -> None:
    cases = history_cases(TABLES, _history(), "dr1")
    assert [c.ref for c in cases] == [f"Procedure/h{i}" for i in (1, 2, 3, 4)]
    assert [sorted(c.outcomes) for c in cases] == [["success"], ["success"], [], ["failure"]]


def test_a_kept_reading_gives_what_a_fresh_one_gives_for_every_index_date() -> None:
    histories = OperatorHistories(TABLES)
    record = _record(_history())
    seen = []
    for index in (date(2026, 4, 1), date(2026, 6, 1), date(2026, 12, 1), date(2019, 1, 1)):
        kept = derived(record, TABLES, index, histories)
        assert kept == derived(record, TABLES, index)
        seen.append(tuple(kept[n].value for n in sorted(kept)))  # volume, years, last-year rate
    assert seen == [
        (2 / 7, 7, 1.0),  # h1, h2 over 7 years (and a month); the last year holds h2, a success
        (3 / 7, 7, None),  # + h3, without an outcome: the rate is unknown
        (4 / 8, 8, None),  # + h4; 7 years and 9 months count as 8
        (None, None, None),  # nothing before h1
    ], seen


def test_a_reading_is_reused_only_for_the_same_procedure_objects() -> None:
    histories = OperatorHistories(TABLES)
    history = _history()
    first = histories.cases(history, "dr1")
    assert histories.cases(list(history), "dr1") is first  # same objects, new list: reused
    # Equal content but other objects (another parse), shorter, or changed: read again.
    assert histories.cases(_history(), "dr1") is not first
    changed = histories.cases(_history(outcome=FAILURE), "dr1")
    assert [sorted(c.outcomes) for c in changed][1] == ["failure"]
    assert len(histories.cases(history[:3], "dr1")) == 3


def test_other_tables_do_not_use_the_kept_reading() -> None:
    histories = OperatorHistories(TABLES)
    record = _record(_history())
    index = date(2026, 12, 1)
    assert derived(record, TABLES, index, histories)["operator_cto_years"].value == 8
    # Tables without their code index read no CTO-PCI at all: `derived` with tables the cache was
    # not built for reads the history itself instead of reusing the kept reading.
    other = MappingTables(TABLES.rows, TABLES.operators, TABLES.rules, TABLES.sources)
    assert derived(record, other, index, histories)["operator_cto_years"].value is None


def test_the_cache_is_bounded_least_recently_used_first() -> None:
    histories = OperatorHistories(TABLES, size=2)
    history = _history()
    a = histories.cases(history, "a")
    histories.cases(history, "b")
    assert histories.cases(history, "a") is a  # refreshes a
    histories.cases(history, "c")  # evicts b, the least recently used
    assert histories.cases(history, "a") is a
    assert len(histories._items) == 2
    assert "b" not in histories._items


def _reference(record: PatientRecord, index: date) -> dict[str, tuple[object, list[str], str]]:
    """The derivation as first written (a pass over the record-order cases per order)."""
    cases = history_cases(TABLES, record.operator_procedures, "dr1")
    dated = [c for c in cases if c.day < index]
    if not dated:
        return {}
    first = min(c.day for c in dated)
    years = practice_years(first, index, TABLES.rules.operator.round_up_after_months)
    refs = [c.ref for c in dated][:20]
    low = "the EHR history may be incomplete: a lower bound"
    out: dict[str, tuple[object, list[str], str]] = {
        "operator_cto_years": (years, refs, f"first CTO-PCI {first.isoformat()}; {low}"),
        "operator_annual_cto_volume": (
            len(dated) / max(years, 1),
            refs,
            f"{len(dated)} CTO-PCIs over {max(years, 1)} year(s); {low}",
        ),
    }
    start = index - timedelta(days=TABLES.rules.operator.last_year_days)
    last = [c for c in dated if c.day >= start]
    if not last:
        out["operator_last_year_success_rate"] = (
            None,
            [],
            "no CTO-PCI by this operator in the last year",
        )
    elif any(not c.outcomes for c in last):
        missing = sum(1 for c in last if not c.outcomes)
        out["operator_last_year_success_rate"] = (
            None,
            [c.ref for c in last][:20],
            f"{missing} of {len(last)} last-year CTO-PCIs have no recorded outcome",
        )
    else:
        good = sum(1 for c in last if "success" in c.outcomes)
        out["operator_last_year_success_rate"] = (
            good / len(last),
            [c.ref for c in last][:20],
            f"{good} of {len(last)} successful in the last year",
        )
    return out


def test_counting_by_day_matches_a_pass_over_the_cases_on_random_histories() -> None:
    rng = random.Random(5)
    for trial in range(60):
        raws = []
        for i in range(rng.randint(0, 60)):
            day = date(2015, 1, 1) + timedelta(days=rng.randint(0, 4400))
            outcome = rng.choice([SUCCESS, SUCCESS, FAILURE, None])
            raws.append(
                procedure(
                    f"h{i}",
                    CPT,
                    "92943",
                    when=day.isoformat(),
                    outcome=outcome,
                    performer=rng.choice(["dr1", "dr1", "dr2"]),
                )
            )
        parsed = tuple(p for p in map(parse_resource, raws) if isinstance(p, Procedure))
        fetched = Fetched("operator_procedures", parsed=parsed, exhaustive=True)
        record = assemble({fetched.key: fetched}, PatientRecord(patient_id="p1", operator_id="dr1"))
        histories = OperatorHistories(TABLES)
        for _ in range(8):
            index = date(2015, 1, 1) + timedelta(days=rng.randint(0, 4600))
            got = derived(record, TABLES, index, histories)
            assert got == derived(record, TABLES, index)
            want = _reference(record, index)
            if not want:
                assert all(m.value is None for m in got.values()), (trial, index)
                continue
            assert {k: (m.value, m.sources, m.note) for k, m in got.items()} == want, (trial, index)


def test_kept_refs_are_what_a_pass_over_the_cases_gives() -> None:
    from cds.mapping.operator import Case, Timeline

    rng = random.Random(3)
    start = date(2015, 1, 1)
    cases = tuple(
        Case(start + timedelta(days=rng.randrange(0, 3000, 7)), f"Procedure/c{i}", frozenset())
        for i in range(120)  # record order is not day order; several cases share a day
    )
    timeline = Timeline.of(cases, frozenset({"success"}))
    for _ in range(3000):  # the same positions come back with other dates: answered as kept
        low = None if rng.random() < 0.3 else start + timedelta(days=rng.randrange(-10, 3010))
        high = start + timedelta(days=rng.randrange(-10, 3010))
        limit = rng.choice((3, 20))
        expected = [c.ref for c in cases if c.day < high and (low is None or c.day >= low)][:limit]
        assert timeline.refs(low, high, limit) == expected
    assert 0 < len(timeline._refs) < 3000


def test_the_longest_last_year_window_counts_without_overflow() -> None:
    """rules.yaml allows up to 36500 days; before that bound 800000 failed every scoring. An
    order dated in year 1 has no year before it: the window starts at the first day there is."""
    rules = TABLES.rules.model_copy(
        update={"operator": TABLES.rules.operator.model_copy(update={"last_year_days": 36_500})}
    )
    tables = replace(TABLES, rules=rules)
    raws = [procedure("old", CPT, "92943", when="0001-02-01", outcome=SUCCESS, performer="dr1")]
    history = tuple(p for p in map(parse_resource, raws) if isinstance(p, Procedure))
    fetched = Fetched("operator_procedures", parsed=history, exhaustive=True)
    record = assemble(
        {"operator_procedures": fetched}, PatientRecord(patient_id="p1", operator_id="dr1")
    )
    rate = "operator_last_year_success_rate"
    assert derived(record, tables, date(1, 3, 1))[rate].value == 1.0
    assert derived(record, tables, date(2026, 12, 1))[rate].value is None  # a century back: 1926
