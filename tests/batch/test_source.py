"""The batch source hands over resources it parsed once; the record is the same as from their JSON."""

from __future__ import annotations

from typing import Any

from cds.batch.source import Parsed
from cds.sources.record import Fetched, PatientRecord, assemble
from tests.mapping.fhir import CPT, SUCCESS, procedure


def _history() -> list[dict[str, Any]]:
    broken = procedure("bad", CPT, "92943", performer="dr1")
    broken["performedDateTime"] = "last spring"  # not a FHIR dateTime: malformed
    other_type = {"resourceType": "Device", "id": "d1"}  # not read by the mapping: skipped
    return [
        procedure("h1", CPT, "92943", outcome=SUCCESS, performer="dr1"),
        broken,
        other_type,
        procedure("h2", CPT, "92943", outcome=SUCCESS, performer="dr1"),
        procedure("h1", CPT, "92943", outcome=SUCCESS, performer="dr1"),  # duplicate id
        procedure("x1", CPT, "92943", outcome=SUCCESS, performer="dr2"),  # not this operator's
    ]


def _record(fetched: Fetched) -> PatientRecord:
    return assemble({fetched.key: fetched}, PatientRecord(patient_id="p1", operator_id="dr1"))


def test_parsed_history_assembles_exactly_as_its_json() -> None:
    key = "operator_procedures"
    parsed = Parsed.of(_history())
    assert len(parsed.models) == 4
    assert len(parsed.raw) == 2
    from_json = _record(Fetched(key, tuple(_history())))
    from_parsed = _record(parsed.fetched(key))
    assert from_parsed == from_json
    assert [p.id for p in from_parsed.operator_procedures] == ["h1", "h2"]
    assert [str(p) for p in from_parsed.problems] == [
        "Procedure/bad: performedDateTime: Value error, not a FHIR dateTime"
    ]
    assert from_parsed.ignored == {key: 1}
    assert not from_parsed.complete(key)


def test_a_read_answers_the_first_resource_with_the_id_parsed_or_not() -> None:
    parsed = Parsed.of(_history())
    first = parsed.read("r", "h1")
    assert first is not None
    assert [m.id for m in first.parsed] == ["h1"]
    assert first.resources == ()
    bad = parsed.read("r", "bad")
    assert bad is not None
    assert bad.parsed == ()
    assert bad.resources[0]["id"] == "bad"
    assert parsed.read("r", "nope") is None
