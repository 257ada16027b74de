"""The pure builder: resources from (record, order, scored case, entered inputs, user, now)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cds.demo.cohort_data import COHORT_NDJSON
from cds.errors import InputError
from cds.mapping.order import find_order
from cds.mapping.tables import DEFAULT_DIR, MappingTables, load_tables
from cds.scoring.inputs import InputValue
from cds.sources.files import FileSource
from cds.sources.record import PatientRecord, RecordRequest, read_record
from cds.writeback.build import (
    build_resources,
    check_entered,
    order_body_site,
    score_with_entered,
    validate_json,
)
from cds.writeback.identity import DIGEST_EXTENSION, IDENTIFIER_SYSTEM, full_url
from cds.writeback.resource import Planned, SaveContext

NOW = datetime(2026, 9, 3, 10, 0, tzinfo=UTC)
LOCAL = "http://cto-cds.org/fhir/CodeSystem/cto-lesion"
FINDINGS: dict[str, InputValue] = {
    "stump": "blunt",
    "calcification": "severe",
    "tortuosity": "none",
    "occlusion_length_mm": 28.0,
    "distal_vessel_disease": True,
    "rentrop_grade": 2,
    "in_stent_occlusion": False,
    "ostial_location": False,
    "prior_cabg_target_vessel": False,
}


@pytest.fixture(scope="module")
def tables() -> MappingTables:
    return load_tables()


def record_of(patient: str, tables: MappingTables) -> PatientRecord:
    source = FileSource.from_path(COHORT_NDJSON)
    return asyncio.run(
        read_record(source, RecordRequest(patient_id=patient), lambda r: find_order(r, tables)[0])
    )


def build(
    tables: MappingTables,
    entered: dict[str, InputValue],
    patient: str = "pt01",
    **ctx_changes: Any,
) -> dict[str, Planned]:
    record = record_of(patient, tables)
    order, _ = find_order(record, tables)
    assert order is not None
    ctx = SaveContext(
        patient, order.ref, order_body_site(order, tables), "Practitioner/op-expert", NOW
    )
    ctx = replace(ctx, **ctx_changes)
    case = score_with_entered(record, tables, NOW.date(), entered, ctx)
    return {p.what: p for p in build_resources(tables, ctx, case, entered)}


def test_one_observation_per_entered_finding_typed_as_the_input(tables: MappingTables) -> None:
    built = build(tables, FINDINGS)
    findings = {w: p for w, p in built.items() if w.startswith("finding ")}
    assert sorted(findings) == sorted(f"finding {n}" for n in FINDINGS)
    length = findings["finding occlusion_length_mm"].body
    assert length["code"]["coding"] == [
        {"system": LOCAL, "code": "occlusion-length"},
        {
            "system": "http://hl7.org/fhir/us/registry-protocols/CodeSystem/NCDRQuestionCodesCS",
            "code": "100013030",
            "display": "Lesion Length",
        },
    ]
    assert length["valueQuantity"] == {
        "value": 28.0,
        "unit": "mm",
        "system": "http://unitsofmeasure.org",
        "code": "mm",
    }
    assert length["status"] == "final"
    assert length["category"][0]["coding"][0]["code"] == "imaging"
    assert length["bodySite"] == {
        "coding": [
            {
                "system": "http://snomed.info/sct",
                "code": "91748002",
                "display": "Mid left anterior descending coronary artery",
            }
        ]
    }
    assert length["focus"] == [{"reference": "ServiceRequest/pt01-order"}]
    assert length["subject"] == {"reference": "Patient/pt01"}
    assert length["performer"] == [{"reference": "Practitioner/op-expert"}]
    assert length["effectiveDateTime"] == "2026-09-03T10:00:00+00:00"
    calcification = findings["finding calcification"].body
    assert calcification["code"]["coding"][1]["code"] == "122132"  # DCM severity of calcification
    assert {c["code"] for c in calcification["valueCodeableConcept"]["coding"]} == {
        "severe",
        "24484000",
    }
    tortuosity = findings["finding tortuosity"].body  # none exists only as SNOMED CID 3716
    assert tortuosity["valueCodeableConcept"]["coding"] == [
        {"system": "http://snomed.info/sct", "code": "260413007"}
    ]
    assert findings["finding rentrop_grade"].body["valueInteger"] == 2
    assert findings["finding distal_vessel_disease"].body["valueBoolean"] is True
    assert findings["finding stump"].body["valueCodeableConcept"]["coding"] == [
        {"system": LOCAL, "code": "blunt"}
    ]
    for planned in built.values():
        validate_json(planned.body)


def test_identifier_is_stable_and_the_digest_ignores_time_and_user(tables: MappingTables) -> None:
    first = build(tables, FINDINGS)
    later = build(tables, FINDINGS, now=datetime(2027, 1, 1, tzinfo=UTC), user=None)
    changed = build(tables, {**FINDINGS, "occlusion_length_mm": 12.0})
    for what, planned in first.items():
        assert planned.body["identifier"] == [{"system": IDENTIFIER_SYSTEM, "value": planned.key}]
        assert planned.body["extension"] == [
            {"url": DIGEST_EXTENSION, "valueString": planned.digest}
        ]
        assert later[what].key == planned.key
        assert later[what].digest == planned.digest
        assert changed[what].key == planned.key
    assert "performer" not in later["finding stump"].body
    assert (
        changed["finding occlusion_length_mm"].digest != first["finding occlusion_length_mm"].digest
    )
    assert changed["finding stump"].digest == first["finding stump"].digest
    other_patient = build(tables, FINDINGS, patient="pt02")
    assert other_patient["finding stump"].key != first["finding stump"].key


def test_score_observation_with_known_points(tables: MappingTables) -> None:
    built = build(tables, FINDINGS)
    operator = built["score operator_cto"].body
    # pt01 (expert operator): lesion items blunt stump, calcification, length >= 20 mm, distal
    # disease = 4; operator adjustment -4 (Xiao 2021 Table 3) -> 0, easy.
    assert operator["valueInteger"] == 0
    assert operator["interpretation"][0]["text"] == "easy"
    assert operator["method"]["coding"][0]["code"] == "operator_cto"
    assert operator["category"][0]["coding"][0]["code"] == "survey"
    assert len(operator["component"]) == 12
    stump = next(
        c for c in operator["component"] if c["code"]["coding"][0]["code"].endswith("stump")
    )
    assert stump["valueBoolean"] is True
    derived = {d["reference"] for d in operator["derivedFrom"]}
    assert full_url(built["finding stump"].key) in derived
    assert all(r.startswith(("Observation/", "urn:uuid:")) for r in derived)  # R4 target types
    # The operator's Procedures are sources too, named by the Provenance rather than derivedFrom.
    sources = built["score operator_cto"].sources
    assert any(r.startswith("Procedure/") for r in sources)
    assert set(sources) >= derived
    cl_score = built["score cl_score"].body
    assert "valueInteger" not in cl_score
    assert cl_score["valueQuantity"]["code"] == "{score}"
    risk = built["risk operator_cto"].body
    assert risk["basis"] == [{"reference": built["score operator_cto"].full_url}]
    assert risk["prediction"][0]["probabilityDecimal"] == round(102 / 103, 4)  # Xiao 2021: easy
    assert "102 of 103" in risk["prediction"][0]["rationale"]
    assert risk["performer"] == {"reference": "Practitioner/op-expert"}


def test_a_range_is_a_value_range_without_band_or_estimate(tables: MappingTables) -> None:
    built = build(tables, {"stump": "blunt"}, patient="pt19")
    operator = built["score operator_cto"].body
    assert "valueInteger" not in operator
    low, high = operator["valueRange"]["low"]["value"], operator["valueRange"]["high"]["value"]
    assert low < high
    assert "interpretation" not in operator
    assert any("dataAbsentReason" in c for c in operator["component"])
    # No estimate: only the withdrawal of one saved before, never created (plan.py).
    risk = built["risk operator_cto"]
    assert risk.only_if_held
    assert "prediction" not in risk.body
    assert risk.body["status"] == "amended"
    assert risk.body["basis"] == [{"reference": built["score operator_cto"].full_url}]
    assert risk.body["note"][0]["text"].startswith(
        f"the inputs no longer give an Operator-CTO band: no estimate (Operator-CTO is {low:g} to"
    )
    validate_json(risk.body)


def test_entered_inputs_are_lesion_findings_only() -> None:
    with pytest.raises(InputError, match=r"age_years: save writes lesion findings only"):
        check_entered({"stump": "blunt", "age_years": 70})
    with pytest.raises(InputError, match="no lesion finding to save"):
        check_entered({"stump": None})
    with pytest.raises(InputError, match=r"stump: must be one of"):
        check_entered({"stump": "Blunt"})
    assert check_entered({"stump": "blunt", "calcification": None}) == {"stump": "blunt"}


def test_saved_findings_are_read_back_as_entered_by_clinician(tables: MappingTables) -> None:
    """The closed loop without a server: the built Observations added to the record map back to
    the entered values, on the target lesion, with the clinician note."""
    from cds.demo.cohort_data import load_ndjson
    from cds.mapping.record_inputs import map_record

    built = build(tables, FINDINGS, patient="pt19")
    saved = []
    for i, planned in enumerate(p for w, p in built.items() if w.startswith("finding ")):
        saved.append({**planned.body, "id": f"saved-{i}"})
    source = FileSource.from_bundle(
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": r} for r in [*load_ndjson(COHORT_NDJSON), *saved]],
        }
    )
    record = asyncio.run(
        read_record(source, RecordRequest(patient_id="pt19"), lambda r: find_order(r, tables)[0])
    )
    mapped = map_record(record, tables, NOW.date()).inputs
    for name, value in FINDINGS.items():
        assert mapped[name].value == value, name
        assert mapped[name].evidence == "lesion", name
        assert mapped[name].note == "entered by clinician", name
        assert mapped[name].sources[0].startswith("Observation/saved-"), name


def test_validation_without_the_fhir_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from cds.errors import ConfigError
    from cds.writeback.build import validate_json
    from tests.mapping.test_export import hide_fhir_resources

    hide_fhir_resources(monkeypatch)
    with pytest.raises(ConfigError, match=r"install cto-cds\[fhir\]"):
        validate_json({"resourceType": "Observation", "status": "final", "code": {"text": "x"}})


def test_a_finding_the_site_tables_cannot_code_is_an_input_error(
    tables: MappingTables, tmp_path: Path
) -> None:
    # A site codes.csv disabling the local stump row: a LookupError traceback (a 500 in the app).
    default = DEFAULT_DIR / "codes.csv"
    header, *rows = default.read_text("utf-8").splitlines()
    row = next(r for r in rows if r.startswith("stump.local.stump,"))
    (tmp_path / "codes.csv").write_text(f"{header}\n{row.replace(',V,true,', ',V,false,')}\n")
    site = load_tables(tmp_path)
    with pytest.raises(InputError) as caught:
        build(site, {"stump": "blunt"})
    assert str(caught.value).startswith("inputs.stump: cannot be written: no code row for stump")
