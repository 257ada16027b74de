"""A cohort from a Bulk export: each completed CTO-PCI Procedure with its outcome, mapped as its order."""

from __future__ import annotations

import json
from datetime import date
from importlib import resources
from pathlib import Path

import pytest
from rich.console import Console

from cds.batch import run
from cds.batch.spool import Spool
from cds.mapping.tables import load_tables
from cds.validation.analysis import analyse
from cds.validation.fhir_cohort import read_fhir_cohort
from cds.validation.report_html import write_report
from cds.validation.report_text import print_validation

SUCCESS, FAILURE = "385669000", "385671000"


def _procedure(order: dict[str, object], suffix: str, **changes: object) -> dict[str, object]:
    procedure: dict[str, object] = {
        "resourceType": "Procedure",
        "id": f"{order['id']}-{suffix}",
        "status": "completed",
        "code": order["code"],
        "subject": order["subject"],
        "performedDateTime": order["authoredOn"],
        "performer": [{"actor": p} for p in order.get("performer", [])],  # type: ignore[attr-defined]
        "bodySite": order.get("bodySite", []),
    }
    if "encounter" in order:
        procedure["encounter"] = order["encounter"]
    procedure.update(changes)
    return procedure


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo cohort's order patients (no operator history), each order also done as a Procedure."""
    text = resources.files("cds.demo").joinpath("cohort.ndjson").read_text(encoding="utf-8")
    everything = [json.loads(line) for line in text.splitlines() if line.strip()]
    orders = [r for r in everything if r["resourceType"] == "ServiceRequest"]
    cases = {o["subject"]["reference"] for o in orders}
    kept = [
        r
        for r in everything
        if r["resourceType"] == "Practitioner"
        or f"Patient/{r['id']}" in cases
        or (r.get("subject") or {}).get("reference") in cases
    ]
    for i, order in enumerate(orders):
        code = SUCCESS if i % 3 else FAILURE
        kept.append(
            _procedure(
                order,
                "done",
                outcome={"coding": [{"system": "http://snomed.info/sct", "code": code}]},
            )
        )
    kept.append(_procedure(orders[0], "no-outcome"))
    kept.append(_procedure(orders[1], "stopped", status="in-progress"))
    directory = tmp_path_factory.mktemp("fhir-cohort")
    (directory / "export.ndjson").write_text("\n".join(json.dumps(r) for r in kept) + "\n")
    return directory


def test_each_procedure_is_a_lesion_with_the_inputs_of_its_order(
    export: Path, tmp_path: Path
) -> None:
    cohort = read_fhir_cohort(export)
    lesions = {lesion.lesion_id: lesion for lesion in cohort.lesions}
    orders = [lid for lid in lesions if lid and lid.endswith("-done")]
    assert len(orders) >= 30
    # The same export scored order by order (the batch path): same inputs, same index date.
    spool = Spool(tmp_path / "spool.sqlite", create=True)
    spool.ingest(export, lambda where, why: pytest.fail(f"{where}: {why}"))
    patients = list(spool.iter_order_patients())
    run.init_export_worker(str(tmp_path / "spool.sqlite"), None, "2026-12-01")
    scored = [json.loads(line) for line in run.score_patient_chunk(patients).lines]
    for line in scored:
        lesion = lesions[f"Procedure/{line['order'].removeprefix('ServiceRequest/')}-done"]
        expected = {name: value["value"] for name, value in line["inputs"].items()}
        assert lesion.inputs == expected, lesion.lesion_id
        assert lesion.procedure_date == date.fromisoformat(line["context"]["index_date"])


def test_outcomes_come_from_the_mapping_tables(export: Path) -> None:
    text = (export / "export.ndjson").read_text()
    written = {
        f"Procedure/{r['id']}": r["outcome"]["coding"][0]["code"]
        for r in map(json.loads, text.splitlines())
        if r["resourceType"] == "Procedure" and "outcome" in r
    }
    cohort = read_fhir_cohort(export)
    assert {lesion.lesion_id for lesion in cohort.lesions} == set(written)
    for lesion in cohort.lesions:
        assert lesion.technical_success == (written[str(lesion.lesion_id)] == SUCCESS)
    assert {lesion.technical_success for lesion in cohort.lesions} == {0, 1}


def test_unusable_procedures_are_reported_by_id(export: Path) -> None:
    cohort = read_fhir_cohort(export)
    errors = sorted(str(e) for e in cohort.errors)
    assert len(errors) == 2
    assert errors[0].endswith(
        "-no-outcome, outcome: has no code the mapping tables read as an outcome"
    )
    assert errors[1].endswith("-stopped, status: 'in-progress' is not completed")
    assert errors[0].startswith("Procedure/")


def test_the_result_names_the_mapping_tables_that_read_the_inputs(
    export: Path, tmp_path: Path
) -> None:
    """A quality officer's result, like a card's audit row, says which tables mapped the cases."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "rules.yaml").write_text("# the site's copy, reviewed\n", encoding="utf-8")
    version = load_tables(site).version
    assert version != load_tables().version
    result = analyse(read_fhir_cohort(export, site))
    assert result.mappings == version
    assert analyse(read_fhir_cohort(export)).mappings == load_tables().version
    console = Console(record=True, width=200)
    print_validation(result, console)
    assert f"inputs read through the mapping tables version {version}" in console.export_text()
    page = write_report(result, tmp_path / "report").read_text(encoding="utf-8")
    assert f"mapping tables version <code>{version}</code>" in page


def test_a_procedure_exported_twice_is_one_lesion(export: Path, tmp_path: Path) -> None:
    """Both copies were lesions before: the same case counted twice in every AUC."""
    lines = (export / "export.ndjson").read_text().splitlines()
    done = next(line for line in lines if '-done"' in line)
    (tmp_path / "export.ndjson").write_text("\n".join(lines) + "\n")
    (tmp_path / "Procedure.ndjson").write_text(done + "\n")
    twice = read_fhir_cohort(tmp_path)
    once = read_fhir_cohort(export)
    assert len(twice.lesions) == len(once.lesions)
    line = lines.index(done) + 1  # Procedure.ndjson is read first (files in name order)
    assert [str(e) for e in twice.errors if e not in once.errors] == [
        f"export.ndjson:{line}: Procedure/{json.loads(done)['id']}: same id as an earlier resource;"
        " the first one is kept"
    ]


def test_a_procedure_that_cannot_be_read_or_has_no_record_is_reported(
    export: Path, tmp_path: Path
) -> None:
    """Each was dropped without a word before (a ghost patient's was a lesion with no Patient)."""
    resources = [json.loads(line) for line in (export / "export.ndjson").read_text().splitlines()]
    done = [r for r in resources if r["id"].endswith("-done")]
    done[0]["performedDateTime"] = "2019-02-30"
    done[1]["outcome"] = "successful"
    done[2].pop("subject")
    done[3]["subject"] = {"reference": "Patient/absent"}
    del done[5]["status"]
    other = {"resourceType": "Procedure", "id": "x", "status": 1, "subject": done[4]["subject"]}
    resources.append(other)  # no CTO-PCI code: not a lesion, not an error
    (tmp_path / "export.ndjson").write_text("".join(json.dumps(r) + "\n" for r in resources))
    cohort = read_fhir_cohort(tmp_path)
    assert len(cohort.lesions) == len(read_fhir_cohort(export).lesions) - 5
    new = [str(e) for e in cohort.errors if e not in read_fhir_cohort(export).errors]
    assert sorted(new) == [
        f"Procedure/{done[0]['id']}, performedDateTime: Value error, no such day in the calendar",
        f"Procedure/{done[1]['id']}, outcome: Input should be a valid dictionary or instance of"
        " CodeableConcept",
        f"Procedure/{done[2]['id']}, subject: is not a Patient reference: no record to read",
        f"Procedure/{done[3]['id']}, subject: no Patient resource with this id in the export",
        f"Procedure/{done[5]['id']}, status: is missing (must be completed)",
    ]


def test_a_procedure_at_the_end_of_the_calendar_is_reported(export: Path, tmp_path: Path) -> None:
    """OverflowError (its history searched up to a day past 9999-12-31) was a traceback."""
    resources = [json.loads(line) for line in (export / "export.ndjson").read_text().splitlines()]
    done = next(r for r in resources if r["id"].endswith("-done"))
    done["performedDateTime"] = "9999-12-31"
    (tmp_path / "export.ndjson").write_text("".join(json.dumps(r) + "\n" for r in resources))
    cohort = read_fhir_cohort(tmp_path)
    assert len(cohort.lesions) == len(read_fhir_cohort(export).lesions) - 1
    (error,) = [e for e in cohort.errors if e.where == f"Procedure/{done['id']}"]
    assert error.reason.endswith(
        ".authoredOn: '9999-12-31' is at the end of the calendar: not an order date"
    )


def test_a_lesion_whose_outcome_codes_conflict_is_reported_not_a_success(
    export: Path, tmp_path: Path
) -> None:
    """Coded "successful" and "unsuccessful", it was a technical success (1) in every AUC. Coded
    "successful" and "partially successful", it is a success where partial counts as one."""
    resources = [json.loads(line) for line in (export / "export.ndjson").read_text().splitlines()]
    done = [r for r in resources if r["id"].endswith("-done")]
    sct = "http://snomed.info/sct"
    done[0]["outcome"] = {"coding": [{"system": sct, "code": c} for c in (SUCCESS, FAILURE)]}
    done[1]["outcome"] = {"coding": [{"system": sct, "code": c} for c in (SUCCESS, "385670004")]}
    (tmp_path / "export.ndjson").write_text("".join(json.dumps(r) + "\n" for r in resources))
    cohort = read_fhir_cohort(tmp_path)
    new = [str(e) for e in cohort.errors if e not in read_fhir_cohort(export).errors]
    assert new == [
        f"Procedure/{done[0]['id']}, outcome: is coded as failure and success: the codes"
        " conflict, no outcome",
        f"Procedure/{done[1]['id']}, outcome: is coded as partial and success: the codes"
        " conflict, no outcome",
    ]
    site = tmp_path / "site"
    site.mkdir()
    (site / "rules.yaml").write_text("success:\n  partial_counts_as_success: true\n")
    lesions = {lesion.lesion_id: lesion for lesion in read_fhir_cohort(tmp_path, site).lesions}
    assert lesions[f"Procedure/{done[1]['id']}"].technical_success == 1
    assert f"Procedure/{done[0]['id']}" not in lesions
