"""Clinical names of the target, order, operator and sources, read from a cohort record."""

from __future__ import annotations

import asyncio

from cds.demo.cohort_data import COHORT_NDJSON
from cds.mapping.case_labels import CaseLabels, name_text
from cds.mapping.tables import load_tables
from cds.pipeline import score_patient
from cds.sources.files import FileSource
from cds.sources.record import RecordRequest
from cds.sources.resources import HumanName
from tests.output.card_cases import TODAY


def _labels(patient: str) -> CaseLabels:
    source = FileSource.from_path(COHORT_NDJSON)
    request = RecordRequest(patient_id=patient, order_id=f"{patient}-order")
    case, _ = asyncio.run(score_patient(source, request, load_tables(), TODAY))
    return case.mapping.labels


def test_order_target_and_operator_of_pt01() -> None:
    labels = _labels("pt01")
    assert labels.target_site == "Mid left anterior descending coronary artery"
    assert labels.order == "CTO PCI, single vessel (paraphrase)"
    assert labels.order_date == "2026-09-03"
    assert labels.operator_name == "Dr. Hanna Achterberg"
    assert labels.operator_npi == "1648203507"


def test_sources_in_clinical_words() -> None:
    sources = _labels("pt01").sources
    # findings listed in the catheterisation report are named by the report and its date
    assert sources["Observation/pt01-obs-1"] == "angiography report 2026-08-20"
    assert sources["ServiceRequest/pt01-order"] == "the order 2026-09-03"
    assert sources["Patient/pt01"] == "patient demographics"
    assert sources["Practitioner/op-expert"] == "operator registry"
    assert sources["Procedure/hx-expert-001-cto"] == "EHR procedure history"
    assert not [label for label in sources.values() if "/" in label]


def test_name_text() -> None:
    assert name_text([HumanName(text="Dr Ng")]) == "Dr Ng"
    assert name_text([HumanName(family="Ng", given=["Ana", "B"])]) == "Ana B Ng"
    assert name_text([HumanName(), HumanName(family="Ng")]) == "Ng"
    assert name_text([]) is None


def test_without_labels_the_mapping_is_the_same_but_names_nothing() -> None:
    from cds.mapping.operator import history_planner
    from cds.mapping.order import find_order
    from cds.mapping.record_inputs import map_record
    from cds.sources.record import read_record

    tables = load_tables()
    source = FileSource.from_path(COHORT_NDJSON)
    request = RecordRequest(patient_id="pt01", order_id="pt01-order")
    choose = lambda rec: find_order(rec, tables)[0]  # noqa: E731 (as score_patient reads it)
    record = asyncio.run(read_record(source, request, choose, history_planner(tables, TODAY)))
    full = map_record(record, tables, TODAY)
    bare = map_record(record, tables, TODAY, labels=False)
    assert full.labels.sources
    assert bare.labels == CaseLabels()
    assert bare == full.model_copy(update={"labels": CaseLabels()})
