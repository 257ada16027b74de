"""Batch scoring gives, per order, exactly what the one-patient path gives; CSV rows as `score --json`."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from cds.batch import run
from cds.batch.spool import Spool
from cds.mapping.tables import load_tables
from cds.pipeline import score_patient
from cds.scoring.engine import score_json
from cds.sources.files import FileSource
from cds.sources.record import RecordRequest
from tests.mapping.fhir import CPT, FAILURE, LAD, SCT, SUCCESS, order, patient, procedure

TODAY = "2026-12-01"


@pytest.fixture(scope="module")
def cohort_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("export")
    text = resources.files("cds.demo").joinpath("cohort.ndjson").read_text(encoding="utf-8")
    (directory / "cohort.ndjson").write_text(text)
    return directory


def test_every_order_matches_the_single_patient_path(cohort_dir: Path, tmp_path: Path) -> None:
    spool_path = tmp_path / "spool.sqlite"
    spool = Spool(spool_path, create=True)
    spool.ingest(cohort_dir, lambda where, why: pytest.fail(f"{where}: {why}"))
    patients = list(spool.iter_order_patients())
    run.init_export_worker(str(spool_path), None, TODAY)
    result = run.score_patient_chunk(patients)
    assert result.errors == []
    assert result.units == len(patients)
    lines = [json.loads(line) for line in result.lines]
    assert len(lines) == result.scored >= 30
    assert_read_as_the_hook_reads(lines, FileSource.from_path(cohort_dir / "cohort.ndjson"))


def assert_read_as_the_hook_reads(lines: list[dict[str, Any]], source: FileSource) -> None:
    """Each batch line carries the contract the single-patient path gives for its order."""
    tables = load_tables()
    for line in lines:
        order_id = line["order"].removeprefix("ServiceRequest/")
        request = RecordRequest(patient_id=line["patient"], order_id=order_id)
        case, _ = asyncio.run(score_patient(source, request, tables, date.fromisoformat(TODAY)))
        expected = case.contract()
        assert {k: line[k] for k in expected} == expected, line["patient"]


def _outcome(*codes: str) -> dict[str, object]:
    return {"coding": [{"system": SCT, "code": code} for code in codes]}


def _awkward_export(directory: Path) -> Path:
    """Records the fuzzing found read wrongly: outcomes coded both as a success and a failure,
    in the operator's career and in the patient's own earlier attempt; an order and a career
    whose performer is version-specific (`Practitioner/dr2/_history/2`)."""
    career = [
        procedure(f"h{i}", CPT, "92943", when=f"20{18 + i}-05-01", outcome=SUCCESS, performer="dr1")
        for i in range(9)
    ]
    career[-1]["outcome"] = _outcome(SUCCESS, FAILURE)  # 2026: the last year
    attempt = procedure("old", CPT, "92943", when="2025-06-01", sites=[LAD], pid="p2")
    attempt["outcome"] = _outcome(FAILURE, SUCCESS)
    versioned = {"reference": "Practitioner/dr2/_history/2"}
    second = [
        procedure(f"k{i}", CPT, "92943", when=f"20{20 + i}-05-01", outcome=SUCCESS, pid="p2")
        for i in range(4)
    ]
    for case in second:
        case["performer"] = [{"actor": versioned}]
    resources = [
        patient("p1"),
        patient("p2"),
        patient("p3"),
        {"resourceType": "Practitioner", "id": "dr1"},
        {"resourceType": "Practitioner", "id": "dr2"},
        order("o1", "p1"),
        order("o2", "p2"),
        {**order("o3", "p3"), "performer": [versioned]},
        attempt,
        *career,
        *second,
    ]
    path = directory / "export.ndjson"
    path.write_text("".join(json.dumps(r) + "\n" for r in resources))
    return path


def _batch_and_single(export: Path, tmp_path: Path) -> list[dict[str, Any]]:
    """Each order's batch line, checked against the one-patient path (a hook's read_record)."""
    spool_path = tmp_path / "spool.sqlite"
    spool = Spool(spool_path, create=True)
    spool.ingest(export.parent, lambda where, why: pytest.fail(f"{where}: {why}"))
    run.init_export_worker(str(spool_path), None, TODAY)
    result = run.score_patient_chunk(list(spool.iter_order_patients()))
    assert result.errors == []
    lines = [json.loads(line) for line in result.lines]
    assert_read_as_the_hook_reads(lines, FileSource.from_path(export))
    return lines


def test_awkward_records_read_alike_in_batch_and_hook(tmp_path: Path) -> None:
    lines = _batch_and_single(_awkward_export(tmp_path), tmp_path)
    inputs = {line["patient"]: line["inputs"] for line in lines}
    rate = inputs["p1"]["operator_last_year_success_rate"]
    assert rate["value"] is None  # was 1.0 in both: a conflict read as a success
    assert "conflict" in rate["note"]
    retry = inputs["p2"]["retry_lesion"]
    assert (retry["value"], retry["sources"]) == (None, ["Procedure/old"])
    # dr2, named at a version by the order and by each case: matched, not unknown.
    assert inputs["p3"]["operator_cto_years"]["value"] == 6  # 2020-05-01 → 2026-10-01
    assert inputs["p3"]["operator_annual_cto_volume"]["value"] == 4 / 6


def test_csv_rows_are_scored_as_score_json(tmp_path: Path) -> None:
    path = tmp_path / "inputs.csv"
    path.write_text(
        "lesion_id,calcification,rentrop_grade,operator_cto_years\na,mild,1,6\nb,purple,1,6\nc,,,\n"
    )
    errors: list[str] = []
    rows = list(run.read_csv_rows(path, errors.append))
    result = run.score_csv_chunk(rows)
    lines = [json.loads(line) for line in result.lines]
    assert [(r["line"], r["lesion_id"]) for r in lines] == [(2, "a"), (4, "c")]
    expected = score_json({"calcification": "mild", "rentrop_grade": 1, "operator_cto_years": 6})
    assert lines[0]["scores"] == expected["scores"]
    assert lines[1]["scores"]["operator_cto"]["points"] is None
    (error,) = [json.loads(e) for e in errors]
    assert error == {
        "line": 3,
        "column": "calcification",
        "reason": "'purple' must be one of none, mild, moderate, severe",
    }


def test_ordered_map_keeps_order_over_processes() -> None:
    work = [list(range(i, i + 3)) for i in range(0, 30, 3)]
    out = list(run.ordered_map(sum, work, 2, run.init_csv_worker, ()))
    assert out == [sum(w) for w in work]


def test_a_chunk_result_has_a_short_repr() -> None:
    # asyncio.run formats the finished task with its result (restoring the SIGINT handler):
    # a repr holding every line cost 15-20 ms per chunk of 64 patients.
    result = run.ChunkResult(["x" * 16_000] * 64, ["e"], 64, 64)
    assert repr(result) == "ChunkResult(units=64, scored=64, errors=1)"
