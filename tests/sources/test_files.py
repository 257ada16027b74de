"""FileSource: Bundle and NDJSON files searched in memory, and the whole record read from one."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from cds.errors import CdsError, ContextError, SourceError
from cds.sources.files import FileSource
from cds.sources.record import Fetched, RecordRequest, read_record
from cds.sources.searches import Search, operator_searches, order_search, patient_searches

DATA = Path(__file__).parents[1] / "data" / "sources"
UUID_PATIENT = "0b9d4f0e-6f7c-4f0e-9a53-2d7d1c1e0001"


def run(source: FileSource, searches: Sequence[Search]) -> dict[str, Fetched]:
    return asyncio.run(source.fetch(searches))


def ids(result: Fetched) -> list[object]:
    assert result.complete, result.error
    return [r.get("id") for r in result.resources]


def test_bundle_answers_every_planned_search() -> None:
    source = FileSource.from_path(DATA / "bundle_collection.json")
    searches = [*patient_searches("pat-1"), order_search("sr-1"), *operator_searches("op-7")]
    results = run(source, searches)
    assert {key: ids(result) for key, result in results.items()} == {
        "patient": ["pat-1"],
        "conditions": ["cond-1", "cond-2"],  # cond-2 by absolute URL; cond-9 is pat-2's
        "procedures": ["proc-1"],
        "observations": ["obs-1"],
        "reports": [],
        "orders": ["sr-1"],
        "order": ["sr-1"],
        "operator": ["op-7"],
        "operator_procedures": ["proc-1", "proc-2"],  # proc-2 by versioned absolute URL
        "operator_observations": ["obs-op"],
    }


def test_ndjson_one_resource_a_line_blank_lines_ignored() -> None:
    source = FileSource.from_path(DATA / "record.ndjson")
    results = run(source, [*patient_searches("pat-1"), *operator_searches("op-7")])
    assert ids(results["patient"]) == ["pat-1"]
    assert ids(results["conditions"]) == ["cond-1"]
    assert ids(results["operator_procedures"]) == ["proc-1"]
    assert results["operator"].error == "operator (Practitioner read): not found (not in the file)"


def test_ndjson_lines_break_at_lf_only(tmp_path: Path) -> None:
    """A CR (JSON whitespace) and U+0085 / U+2028 (allowed raw in a JSON string) split a line
    before, so a valid file was refused as "not valid JSON"."""
    patient = '{"resourceType": "Patient",\r "id": "pat-1", "name": [{"text": "A\u2028B\x85C"}]}'
    order = '{"resourceType": "ServiceRequest", "id": "sr-1", "subject": {"reference": "Patient/pat-1"}}'
    path = tmp_path / "record.ndjson"
    path.write_bytes(f"{patient}\r\n\r\n{order}\r\n".encode())
    source = FileSource.from_path(path)
    assert [r["id"] for r in source.resources] == ["pat-1", "sr-1"]
    assert source.resources[0]["name"] == [{"text": "A\u2028B\x85C"}]


def test_transaction_urn_uuid_references_resolve_through_full_urls() -> None:
    source = FileSource.from_path(DATA / "transaction_uuid.json")
    results = run(source, [*patient_searches(UUID_PATIENT), *operator_searches("op-7")])
    assert ids(results["patient"]) == [UUID_PATIENT]  # a POST without id: its uuid stands in
    assert len(results["conditions"].resources) == 1
    assert ids(results["procedures"]) == ["proc-1"]
    assert ids(results["operator_procedures"]) == ["proc-1"]
    assert source.resolve({"reference": f"urn:uuid:{UUID_PATIENT}"}) == f"Patient/{UUID_PATIENT}"
    assert source.resolve({"reference": "urn:uuid:not-in-the-file"}) is None
    assert source.resolve({"reference": "#contained"}) is None


@pytest.mark.parametrize(
    ("path", "cause"),
    [
        (
            "Condition?patient=pat-1&code=http://loinc.org|1",
            "unsupported search parameter 'code' for Condition",
        ),
        (
            "Condition?patient:Patient=pat-1",
            "unsupported search parameter 'patient:Patient' for Condition",
        ),
        (
            "Observation?performer=Practitioner/op-7",
            "unsupported search parameter 'performer' for Observation",
        ),
        ("Procedure?focus=Practitioner/op-7", "unsupported search parameter 'focus' for Procedure"),
    ],
)
def test_unknown_parameter_is_an_error_not_everything(path: str, cause: str) -> None:
    search = Search("x", path, path.partition("?")[0])
    result = run(FileSource.from_path(DATA / "bundle_collection.json"), [search])["x"]
    assert result.error == f"x ({search.resource_type} search): internal error ({cause})"
    assert result.resources == ()


def test_parameter_values_follow_fhir_reference_meaning() -> None:
    source = FileSource.from_path(DATA / "bundle_collection.json")
    searches = [
        Search("bare", "Procedure?performer=op-7", "Procedure"),
        Search("either", "Condition?patient=pat-2,pat-1", "Condition"),
        Search("typed", "Condition?patient=Patient/pat-2", "Condition"),
        Search("wrong_type", "Condition?patient=Group/pat-1", "Condition"),
        Search("both", "Procedure?patient=pat-2&performer=Practitioner/op-7", "Procedure"),
    ]
    results = run(source, searches)
    assert ids(results["bare"]) == ["proc-1", "proc-2"]
    assert ids(results["either"]) == ["cond-1", "cond-2", "cond-9"]
    assert ids(results["typed"]) == ["cond-9"]
    assert ids(results["wrong_type"]) == []
    assert ids(results["both"]) == ["proc-2"]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def bundle_text(*entries: object) -> str:
    return json.dumps({"resourceType": "Bundle", "type": "collection", "entry": list(entries)})


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "a.json",
            '{"resourceType": "Bundle",\n "entry": [}',
            "a.json: line 2, column 12: not valid JSON (Expecting value)",
        ),
        (
            "b.json",
            '{"resourceType": "Patient", "id": "p"}',
            "b.json: not a FHIR Bundle (NDJSON files",
        ),
        ("c.json", '{"resourceType": "Bundle", "entry": {}}', "c.json: Bundle.entry is not a list"),
        (
            "d.json",
            bundle_text({"resource": {}}),
            "d.json: entry 0: resource has no valid resourceType",
        ),
        (
            "e.json",
            bundle_text({"resource": {"resourceType": "Patient"}}, 3),
            "e.json: entry 1: not a JSON object",
        ),
        (
            "f.json",
            bundle_text({"resource": [1]}),
            "f.json: entry 0: resource is not a JSON object",
        ),
        (
            "g.json",
            bundle_text({"resource": {"resourceType": "Patient", "id": "a b"}}),
            "g.json: entry 0: Patient.id is not a FHIR id",
        ),
        (
            "h.json",
            bundle_text(*[{"resource": {"resourceType": "Patient", "id": "p"}}] * 2),
            "h.json: entry 1: same Patient id as entry 0",
        ),
        (
            "i.json",
            bundle_text({"fullUrl": 7, "resource": {}}),
            "i.json: entry 0: fullUrl is not a string",
        ),
        (
            "j.ndjson",
            '{"resourceType": "Patient"}\n\n{"resourceType": \n',
            "j.ndjson: line 3: not valid JSON",
        ),
        (
            "k.ndjson",
            '{"resourceType": "Patient"}\n"just a string"\n',
            "k.ndjson: line 2: resource is not a JSON object",
        ),
        ("l.json", "", "l.json: line 1, column 1: not valid JSON"),
    ],
)
def test_bad_files_raise_source_error_naming_file_and_place(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(SourceError) as caught:
        FileSource.from_path(path)
    assert str(caught.value).startswith(f"{tmp_path}/{message}")
    assert caught.value.url == str(path)
    assert caught.value.status is None
    assert isinstance(caught.value, CdsError)


def test_missing_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot read the file"):
        FileSource.from_path(tmp_path / "absent.json")
    path = tmp_path / "latin1.json"
    path.write_bytes(
        b'{"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "P\xe9"}}]}'
    )
    with pytest.raises(SourceError, match="not UTF-8"):
        FileSource.from_path(path)


ORDER = {
    "resourceType": "ServiceRequest",
    "id": "sr-1",
    "status": "active",
    "intent": "order",
    "subject": {"reference": "urn:uuid:11111111-0000-4000-8000-000000000001"},
    "performer": [{"reference": "Practitioner/op-7"}],
}


def test_read_record_end_to_end_with_the_operator_in_a_second_round() -> None:
    patient_url = "urn:uuid:11111111-0000-4000-8000-000000000001"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": patient_url,
                "resource": {"resourceType": "Patient", "id": "pat-1", "birthDate": "1956-03-02"},
            },
            {"resource": ORDER},
            {"resource": {"resourceType": "Practitioner", "id": "op-7"}},
            {
                "resource": {
                    "resourceType": "Procedure",
                    "id": "prior-cto",
                    "status": "completed",
                    "subject": {"reference": "Patient/other"},
                    "performer": [{"actor": {"reference": "Practitioner/op-7"}}],
                    "performedDateTime": "2025-05-01",
                }
            },
            {
                "resource": {
                    "resourceType": "Condition",
                    "id": "cto",
                    "subject": {"reference": patient_url},
                    "code": {"text": "CTO"},
                }
            },
        ],
    }
    source = FileSource.from_bundle(bundle, "e2e")
    rounds: list[list[str]] = []
    fetch = source.fetch

    async def recording(searches: Sequence[Search]) -> dict[str, Fetched]:
        rounds.append([s.key for s in searches])
        return await fetch(searches)

    source.fetch = recording  # type: ignore[method-assign]
    record = asyncio.run(read_record(source, RecordRequest(patient_id="pat-1", order_id="sr-1")))
    assert rounds == [
        ["patient", "conditions", "procedures", "observations", "reports", "orders", "order"],
        ["operator", "operator_procedures", "operator_observations"],
    ]
    assert record.incomplete == {}
    assert record.problems == []
    assert record.patient is not None
    assert record.patient.birthDate == "1956-03-02"
    assert record.order is not None
    assert record.order.id == "sr-1"
    assert record.operator_id == "op-7"
    assert record.operator is not None
    assert [p.id for p in record.operator_procedures] == ["prior-cto"]
    assert [c.id for c in record.conditions] == ["cto"]
    assert [o.id for o in record.orders] == ["sr-1"]


def test_only_patient_id() -> None:
    assert FileSource.from_path(DATA / "record.ndjson").only_patient_id() == "pat-1"
    assert FileSource.from_path(DATA / "transaction_uuid.json").only_patient_id() == UUID_PATIENT
    with pytest.raises(SourceError, match="holds 2 Patient resources"):
        FileSource.from_path(DATA / "bundle_collection.json").only_patient_id()
    with pytest.raises(SourceError, match="holds 0 Patient resources"):
        FileSource([]).only_patient_id()
    with pytest.raises(SourceError, match="the Patient has no id"):
        FileSource([{"resourceType": "Patient"}]).only_patient_id()


def test_the_order_names_its_patient_through_a_full_url() -> None:
    source = FileSource.from_bundle(
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {"fullUrl": "urn:uuid:a1", "resource": {"resourceType": "Patient", "id": "pa"}},
                {"resource": {"resourceType": "Patient", "id": "pb"}},
                {
                    "resource": {
                        "resourceType": "ServiceRequest",
                        "id": "o1",
                        "subject": {"reference": "urn:uuid:a1"},
                    }
                },
                {
                    "resource": {
                        "resourceType": "ServiceRequest",
                        "id": "o2",
                        "subject": {"reference": "Group/g1"},
                    }
                },
            ],
        }
    )
    assert source.order_patient_id("o1") == "pa"
    with pytest.raises(SourceError, match=r"ServiceRequest/o2\.subject is not a Patient"):
        source.order_patient_id("o2")
    with pytest.raises(SourceError, match="no ServiceRequest/o3 in the file"):
        source.order_patient_id("o3")
    with pytest.raises(SourceError, match="holds 2 Patient resources"):
        source.only_patient_id()


@pytest.mark.parametrize(
    "subject", ["Patient/pat-2", "https://ehr.example/fhir/Patient/pat-2/_history/3"]
)
def test_an_order_read_by_id_for_another_patient_is_refused(subject: str) -> None:
    # `score --fhir --patient pat-1 --order sr-1` scored pat-2's order (its vessel, its operator)
    # against pat-1's record.
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": {"resourceType": "Patient", "id": "pat-1"}},
            {"resource": {**ORDER, "subject": {"reference": subject}}},
        ],
    }
    source = FileSource.from_bundle(bundle, "two patients")
    request = RecordRequest(patient_id="pat-1", order_id="sr-1")
    with pytest.raises(ContextError) as refused:
        asyncio.run(read_record(source, request))
    assert str(refused.value) == (
        f"order: ServiceRequest/sr-1 is an order of {subject!r}, not of Patient/pat-1: "
        "not the same patient"
    )
    # Its own patient's order is read as before.
    same = {**ORDER, "subject": {"reference": "Patient/pat-1"}}
    bundle["entry"][1] = {"resource": same}  # type: ignore[index]
    record = asyncio.run(read_record(FileSource.from_bundle(bundle, "one"), request))
    assert record.order is not None
