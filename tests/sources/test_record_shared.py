"""An operator history handed over parsed (the batch source) is placed once per (history, operator)
and copied into each record: the record must be exactly what placing it resource by resource gives."""

from __future__ import annotations

from typing import Any

from cds.sources import record as record_module
from cds.sources.record import Fetched, PatientRecord, assemble
from cds.sources.resources import Resource, parse_resource
from tests.mapping.fhir import CPT, SUCCESS, procedure

KEY = "operator_procedures"


def _parsed(raws: list[dict[str, Any]]) -> tuple[Resource, ...]:
    models = [parse_resource(r) for r in raws]
    return tuple(m for m in models if isinstance(m, Resource))


HISTORY = _parsed(
    [
        procedure("h1", CPT, "92943", outcome=SUCCESS, performer="dr1"),
        procedure("h2", CPT, "92943", outcome=SUCCESS, performer="dr1"),
        procedure("h1", CPT, "92943", outcome=SUCCESS, performer="dr1"),  # same id: once
        procedure("x1", CPT, "92943", outcome=SUCCESS, performer="dr2"),  # another operator's
        {"resourceType": "Procedure", "performer": [{"actor": {"reference": "Practitioner/dr1"}}]},
        {"resourceType": "Observation", "id": "o1", "status": "final"},  # wrong type: ignored
    ]
)


def _assembled(operator: str, fetched: Fetched) -> PatientRecord:
    return assemble({KEY: fetched}, PatientRecord(patient_id="p1", operator_id=operator))


def _one_by_one(operator: str) -> PatientRecord:
    # The same resources as JSON: the path every other source takes.
    raws = tuple(r.model_dump(exclude_none=True) for r in HISTORY)
    return _assembled(operator, Fetched(KEY, raws))


def test_a_shared_history_gives_the_record_placing_it_resource_by_resource_gives() -> None:
    record_module._SHARED.clear()
    for operator in ("dr1", "dr2", "dr1", "nobody"):  # placed, reused, other operators
        shared = _assembled(operator, Fetched(KEY, parsed=HISTORY))
        assert shared == _one_by_one(operator), operator
    dr1 = _assembled("dr1", Fetched(KEY, parsed=HISTORY))
    assert [p.id for p in dr1.operator_procedures] == ["h1", "h2", None]
    assert dr1.ignored == {KEY: 2}
    assert not dr1.complete(KEY)  # strays from a source that did not say it read everything
    # One entry per history: placed for another operator, it is placed again (and replaced).
    assert len(record_module._SHARED) == 1


def test_records_do_not_share_their_lists() -> None:
    first = _assembled("dr1", Fetched(KEY, parsed=HISTORY))
    second = _assembled("dr1", Fetched(KEY, parsed=HISTORY))
    first.operator_procedures.clear()
    first._seen[KEY].clear()
    assert len(second.operator_procedures) == 3
    assert second._seen[KEY] == {"h1", "h2"}


def test_a_record_already_holding_the_key_is_placed_resource_by_resource() -> None:
    record = PatientRecord(patient_id="p1", operator_id="dr1")
    assemble({KEY: Fetched(KEY, parsed=HISTORY[:1])}, record)
    assemble({KEY: Fetched(KEY, parsed=HISTORY)}, record)  # h1 again: kept once
    assert [p.id for p in record.operator_procedures] == ["h1", "h2", None]


def test_the_cache_is_bounded() -> None:
    record_module._SHARED.clear()
    for n in range(record_module._SHARED_SIZE + 5):
        history = _parsed([procedure(f"h{n}", CPT, "92943", performer="dr1")])
        _assembled("dr1", Fetched(KEY, parsed=history))
    assert len(record_module._SHARED) == record_module._SHARED_SIZE
