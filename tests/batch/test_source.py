"""The batch source hands over resources it parsed once; the record is the same as from their JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cds.batch.source import OperatorCache, Parsed
from cds.batch.spool import Spool
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


def test_parsed_from_json_text_is_parsed_from_its_dict() -> None:
    """The batch reads a patient's models from the spooled text: the same models, the same JSON
    for those that do not parse, the same problems reported (element and message)."""
    history = _history()
    surrogate = procedure("s1", CPT, "92943", outcome=SUCCESS, performer="dr1")
    surrogate["status"] = "\ud800"  # JSON mode refuses the escape; read from the dict instead
    nested = procedure("n1", CPT, "92943", performer="dr1")
    nested["bodySite"] = [{"coding": [{"system": 5}]}]
    resources = [*history, surrogate, nested]
    rows = [(str(r["resourceType"]), json.dumps(r)) for r in resources]
    from_text, from_dicts = Parsed.of_json(rows), Parsed.of(resources)
    assert [repr(m) for m in from_text.models] == [repr(m) for m in from_dicts.models]
    assert from_text.raw == from_dicts.raw
    assert len(from_text.items) == len(resources)
    key = "operator_procedures"
    record = _record(from_text.fetched(key))
    assert record == _record(from_dicts.fetched(key))
    assert [str(p) for p in record.problems] == [
        "Procedure/bad: performedDateTime: Value error, not a FHIR dateTime",
        "Procedure/n1: bodySite.0.coding.0.system: Input should be a valid string",
    ]


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


def test_a_shared_resource_is_parsed_once_and_assembles_as_its_json(tmp_path: Path) -> None:
    doctor = {"resourceType": "Practitioner", "id": "dr1", "name": [{"family": "Ng"}]}
    broken = {"resourceType": "Practitioner", "id": "dr2", "name": "not a list"}
    spool = Spool(tmp_path / "spool.sqlite", create=True)
    lines = "\n".join(json.dumps(r) for r in (doctor, broken))
    (tmp_path / "Practitioner.ndjson").write_text(lines + "\n")
    spool.ingest(tmp_path, lambda where, why: pytest.fail(f"{where}: {why}"))
    cache = OperatorCache(spool)
    records = []
    for resource in (doctor, broken):
        rid = str(resource["id"])
        kept = cache.shared("Practitioner", rid)
        assert kept is not None
        assert cache.shared("Practitioner", rid) is kept  # not read and parsed again
        records.append(_record(kept.only("operator")))
        assert records[-1] == _record(Fetched("operator", (resource,)))
    assert records[0].operator is not None
    assert not records[0].problems
    assert records[1].operator is None
    assert records[1].problems  # malformed, reported as from its JSON
    assert cache.shared("Practitioner", "nobody") is None
