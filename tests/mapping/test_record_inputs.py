"""The mapping of a patient's record to canonical inputs, path by path, on the default tables."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from cds.mapping.operator import history_planner, practice_years
from cds.mapping.record_inputs import MappingResult, map_record
from cds.mapping.tables import MappingTables, load_tables
from cds.sources.files import FileSource
from cds.sources.prefetch import PrefetchSource
from cds.sources.reasons import Problem
from cds.sources.record import Fetched, PatientRecord, RecordRequest, assemble, read_record
from tests.mapping.fhir import (
    CABG_SCT,
    CPT,
    FAILURE,
    ICD10,
    LAD,
    LCX,
    RCA,
    SCT,
    SUCCESS,
    cc,
    condition,
    finding,
    order,
    patient,
    procedure,
)

TODAY = date(2026, 11, 25)


@pytest.fixture(scope="module")
def tables() -> MappingTables:
    return load_tables()


def record(
    *resources: dict[str, Any],
    failed: dict[str, str] | None = None,
    operator: str | None = "dr1",
    operator_history: list[dict[str, Any]] | None = None,
    operator_obs: list[dict[str, Any]] | None = None,
) -> PatientRecord:
    by_key: dict[str, list[dict[str, Any]]] = {
        "patient": [],
        "conditions": [],
        "procedures": [],
        "observations": [],
        "reports": [],
        "orders": [],
    }
    key_of = {
        "Patient": "patient",
        "Condition": "conditions",
        "Procedure": "procedures",
        "Observation": "observations",
        "ServiceRequest": "orders",
    }
    for res in resources:
        by_key[key_of[res["resourceType"]]].append(res)
    fetched = {k: Fetched(k, tuple(v), error=(failed or {}).get(k)) for k, v in by_key.items()}
    if operator:
        fetched["operator_procedures"] = Fetched(
            "operator_procedures", tuple(operator_history or ())
        )
        fetched["operator_observations"] = Fetched(
            "operator_observations", tuple(operator_obs or ())
        )
    return assemble(fetched, PatientRecord(operator_id=operator, patient_id="p1"))


def mapped(tables: MappingTables, *resources: dict[str, Any], **kw: Any) -> MappingResult:
    return map_record(record(patient(), order(), *resources, **kw), tables, TODAY)


# --- history -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("system", "code"),
    [
        (ICD10, "Z95.1"),
        (ICD10, "Z951"),
        ("urn:oid:2.16.840.1.113883.6.90", "Z95.1"),
        (ICD10, "I25.710"),  # I25.7 family implies a graft
    ],
)
def test_prior_cabg_from_condition_codes(tables: MappingTables, system: str, code: str) -> None:
    result = mapped(tables, condition("c1", system, code))
    assert result.inputs["prior_cabg"].value is True
    assert result.inputs["prior_cabg"].sources == ["Condition/c1"]
    assert result.inputs["prior_cabg"].evidence == "patient"


def test_prior_cabg_from_cpt_is_claim_evidence(tables: MappingTables) -> None:
    result = mapped(tables, procedure("x", CPT, "33533"))
    assert result.inputs["prior_cabg"].value is True
    assert result.inputs["prior_cabg"].evidence == "claim"


def test_nothing_recorded_is_not_documented(tables: MappingTables) -> None:
    result = mapped(tables)
    for name in (
        "prior_cabg",
        "prior_mi",
        "retry_lesion",
        "in_stent_occlusion",
        "prior_cabg_target_vessel",
    ):
        assert result.inputs[name].value is False, name
        assert result.inputs[name].evidence == "not documented", name


def test_unreadable_history_stays_unknown(tables: MappingTables) -> None:
    why = "conditions (Condition search): not read in time (deadline of 3.0 s)"
    result = mapped(tables, failed={"conditions": why})
    for name in ("prior_cabg", "prior_mi", "in_stent_occlusion", "prior_cabg_target_vessel"):
        assert result.inputs[name].value is None, name
        assert result.inputs[name].evidence == "unknown", name
    assert result.inputs["prior_cabg"].note == f"history could not be read completely ({why})"


@pytest.mark.parametrize("verification", ["entered-in-error", "refuted"])
def test_void_conditions_are_ignored(tables: MappingTables, verification: str) -> None:
    result = mapped(tables, condition("c1", ICD10, "Z95.1", verification=verification))
    assert result.inputs["prior_cabg"].value is False


def test_entered_in_error_procedure_is_ignored(tables: MappingTables) -> None:
    result = mapped(tables, procedure("x", CPT, "33533", status="entered-in-error"))
    assert result.inputs["prior_cabg"].value is False


def test_prior_mi_is_before_the_order(tables: MappingTables) -> None:
    assert (
        mapped(tables, condition("m", ICD10, "I21.4", onset="2024-05-01")).inputs["prior_mi"].value
        is True
    )
    same_day = mapped(tables, condition("m", ICD10, "I21.4", onset="2026-10-01"))
    assert same_day.inputs["prior_mi"].value is False


@pytest.mark.parametrize(
    ("sites", "when", "target_value"),
    [
        ([LAD], "2025-01-01", True),
        ([RCA], "2025-01-01", False),
        ([LAD], "2026-08-15", False),  # 47 days before the order: not ≥ 3 months
        (None, "2025-01-01", None),  # grafted vessels not recorded
    ],
)
def test_cabg_to_the_target_vessel(
    tables: MappingTables, sites: list[str] | None, when: str, target_value: bool | None
) -> None:
    result = mapped(tables, procedure("cabg", SCT, CABG_SCT, when=when, sites=sites))
    assert result.inputs["prior_cabg"].value is True
    assert result.inputs["prior_cabg_target_vessel"].value is target_value


def test_cabg_target_vessel_needs_the_target(tables: MappingTables) -> None:
    rec = record(patient(), order(vessel=None), procedure("cabg", SCT, CABG_SCT, sites=[LAD]))
    result = map_record(rec, tables, TODAY)
    assert result.inputs["target_vessel"].value is None
    assert result.inputs["prior_cabg_target_vessel"].value is None


@pytest.mark.parametrize(
    ("site", "outcome", "expected"),
    [
        (LAD, FAILURE, True),
        (RCA, FAILURE, False),
        (LAD, SUCCESS, False),
        (LAD, None, None),
    ],
)
def test_retry_lesion(
    tables: MappingTables, site: str, outcome: str | None, expected: bool | None
) -> None:
    result = mapped(
        tables, procedure("old", CPT, "92943", when="2025-06-01", sites=[site], outcome=outcome)
    )
    assert result.inputs["retry_lesion"].value is expected


PARTIAL = "385670004"


def _coded(outcomes: tuple[str, ...], **kw: Any) -> dict[str, Any]:
    """A CTO-PCI Procedure whose outcome carries one coding per code given."""
    res = procedure(kw.pop("prid", "old"), CPT, "92943", outcome=outcomes[0], **kw)
    res["outcome"]["coding"] += [{"system": SCT, "code": code} for code in outcomes[1:]]
    return res


def _with_rules(tables: MappingTables, **flags: bool) -> MappingTables:
    success = tables.rules.success.model_copy(
        update={"partial_counts_as_success": flags.pop("partial_success", False)}
    )
    rules = tables.rules.model_copy(update={"success": success, **flags})
    return replace(tables, rules=rules)


@pytest.mark.parametrize(
    ("outcomes", "retry_partial", "expected"),
    [
        ((SUCCESS, FAILURE), False, None),  # was True: read as a failure
        ((FAILURE, SUCCESS), True, None),
        ((PARTIAL, FAILURE), False, None),  # partial is not a failure here: they disagree
        ((PARTIAL, FAILURE), True, True),  # both a failure for this site: agreed
        ((SUCCESS, PARTIAL), False, False),  # neither a failure: agreed
        ((SUCCESS, PARTIAL), True, None),
    ],
)
def test_retry_is_undecided_when_outcome_codes_disagree(
    tables: MappingTables, outcomes: tuple[str, ...], retry_partial: bool, expected: bool | None
) -> None:
    site = _with_rules(tables, retry_counts_partial_success=retry_partial)
    old = _coded(outcomes, when="2025-06-01", sites=[LAD])
    retry = mapped(site, old).inputs["retry_lesion"]
    assert retry.value is expected
    if expected is None:
        assert retry.sources == ["Procedure/old"]
        assert "outcome codes that conflict, failed and not: Procedure/old" in str(retry.note)
    # One clear failure on the target still decides, whatever another attempt says.
    clear = procedure("clear", CPT, "92943", when="2024-01-01", sites=[LAD], outcome=FAILURE)
    assert mapped(site, old, clear).inputs["retry_lesion"].value is True


def _career(*last: dict[str, Any]) -> list[dict[str, Any]]:
    first = procedure("h0", CPT, "92943", when="2018-01-01", outcome=SUCCESS, performer="dr1")
    return [first, *last]


@pytest.mark.parametrize(
    ("outcomes", "partial_success", "rate"),
    [
        ((SUCCESS, FAILURE), False, None),  # was 1.0: read as a success
        ((FAILURE, SUCCESS), True, None),
        ((SUCCESS, PARTIAL), False, None),  # partial is no success here: they disagree
        ((SUCCESS, PARTIAL), True, 1.0),  # both a success for this site: agreed
        ((PARTIAL, FAILURE), False, 0.0),  # neither a success: agreed
    ],
)
def test_success_rate_is_unknown_when_an_outcome_is_coded_both_ways(
    tables: MappingTables, outcomes: tuple[str, ...], partial_success: bool, rate: float | None
) -> None:
    site = _with_rules(tables, partial_success=partial_success)
    history = _career(_coded(outcomes, prid="h1", when="2026-05-01", performer="dr1"))
    got = mapped(site, operator_history=history).inputs["operator_last_year_success_rate"]
    assert got.value == rate
    if rate is None:
        assert got.note == (
            "1 of 1 last-year CTO-PCIs have no usable outcome"
            " (1 with outcome codes that conflict: success and not)"
        )
        assert got.sources == ["Procedure/h1"]


def test_a_conflicting_outcome_is_counted_with_the_unrecorded_ones(tables: MappingTables) -> None:
    history = _career(
        _coded((SUCCESS, FAILURE), prid="h1", when="2026-05-01", performer="dr1"),
        procedure("h2", CPT, "92943", when="2026-06-01", outcome=None, performer="dr1"),
        procedure("h3", CPT, "92943", when="2026-07-01", outcome=SUCCESS, performer="dr1"),
    )
    got = mapped(tables, operator_history=history).inputs["operator_last_year_success_rate"]
    assert got.value is None
    assert got.note == (
        "2 of 3 last-year CTO-PCIs have no usable outcome"
        " (1 with outcome codes that conflict: success and not)"
    )
    # Without the conflict the wording is as it was.
    history[1] = procedure("h1", CPT, "92943", when="2026-05-01", outcome=SUCCESS, performer="dr1")
    got = mapped(tables, operator_history=history).inputs["operator_last_year_success_rate"]
    assert got.note == "1 of 3 last-year CTO-PCIs have no recorded outcome"


def test_in_stent_occlusion_needs_a_finding_once_a_stent_exists(tables: MappingTables) -> None:
    stent = condition("s", ICD10, "Z95.5")
    assert mapped(tables, stent).inputs["in_stent_occlusion"].value is None
    with_finding = mapped(tables, stent, finding("f", "in-stent-occlusion", {"valueBoolean": True}))
    assert with_finding.inputs["in_stent_occlusion"].value is True
    assert with_finding.inputs["in_stent_occlusion"].evidence == "lesion"


# --- order, patient ------------------------------------------------------------------------


def test_target_vessel_and_age_from_order_and_patient(tables: MappingTables) -> None:
    result = mapped(tables)
    assert result.inputs["target_vessel"].value == "LAD"
    assert result.inputs["target_vessel"].sources == ["ServiceRequest/o1"]
    assert result.inputs["age_years"].value == 71  # born 1955-03-02, order 2026-10-01
    assert result.inputs["sex"].value == "male"
    assert result.index_date == date(2026, 10, 1)


@pytest.mark.parametrize(("birth", "age"), [("1955", None), ("1955-03", 71), ("1955-10", None)])
def test_partial_birth_date(tables: MappingTables, birth: str, age: int | None) -> None:
    rec = record(patient(birth=birth), order())
    assert map_record(rec, tables, TODAY).inputs["age_years"].value == age


# --- lesion findings -----------------------------------------------------------------------


def test_most_recent_lesion_finding_wins_and_conflict_is_reported(tables: MappingTables) -> None:
    old = finding(
        "a",
        "occlusion-length",
        {
            "valueQuantity": {
                "value": 15,
                "unit": "mm",
                "system": "http://unitsofmeasure.org",
                "code": "mm",
            }
        },
        when="2026-01-01",
    )
    new = finding(
        "b",
        "occlusion-length",
        {
            "valueQuantity": {
                "value": 2.5,
                "unit": "cm",
                "system": "http://unitsofmeasure.org",
                "code": "cm",
            }
        },
        when="2026-09-01",
    )
    result = mapped(tables, old, new)
    length = result.inputs["occlusion_length_mm"]
    assert length.value == 25
    assert length.sources[0] == "Observation/b"
    assert "conflict" in (length.note or "")
    assert "Observation/a" in (length.note or "")


def test_finding_on_another_vessel_is_not_used(tables: MappingTables) -> None:
    result = mapped(tables, finding("f", "rentrop-grade", {"valueInteger": 1}, site=LCX))
    assert result.inputs["rentrop_grade"].value is None
    assert any("Observation/f" in note for note in result.notes)


@pytest.mark.parametrize(
    ("code", "value", "name", "expected"),
    [
        (
            "stump",
            {
                "valueCodeableConcept": cc(
                    "http://cto-cds.org/fhir/CodeSystem/cto-lesion", "no-stump"
                )
            },
            "stump",
            "no_stump",
        ),
        (
            "tortuosity-grade",
            {"valueCodeableConcept": cc("http://cto-cds.org/fhir/CodeSystem/cto-lesion", "unseen")},
            "tortuosity",
            "unseen",
        ),
        ("rentrop-grade", {"valueInteger": 1}, "rentrop_grade", 1),
        ("rentrop-grade", {"valueInteger": 5}, "rentrop_grade", None),  # out of range: unusable
        ("bend-gt-45", {"valueBoolean": False}, "bend_gt_45_in_occlusion", False),
        ("interventional-collaterals", {"valueBoolean": True}, "interventional_collaterals", True),
    ],
)
def test_local_lesion_codes(
    tables: MappingTables, code: str, value: dict[str, Any], name: str, expected: Any
) -> None:
    assert mapped(tables, finding("f", code, value)).inputs[name].value == expected


def test_standard_calcification_codes(tables: MappingTables) -> None:
    dcm = finding(
        "d",
        "122132",
        {"valueCodeableConcept": cc(SCT, "24484000")},
        system="http://dicom.nema.org/resources/ontology/DCM",
    )
    assert mapped(tables, dcm).inputs["calcification"].value == "severe"
    ncdr_no = finding(
        "n",
        "1000142350",
        {"valueBoolean": False},
        system="http://hl7.org/fhir/us/registry-protocols/CodeSystem/NCDRQuestionCodesCS",
    )
    result = mapped(tables, ncdr_no)
    assert result.inputs["calcification"].value is None  # "not severe" leaves the grade unknown


def test_entered_in_error_finding_is_ignored(tables: MappingTables) -> None:
    bad = finding("f", "rentrop-grade", {"valueInteger": 0}, status="entered-in-error")
    assert mapped(tables, bad).inputs["rentrop_grade"].value is None


def test_unknown_lesion_inputs_say_why(tables: MappingTables) -> None:
    result = mapped(tables)
    assert result.inputs["stump"].value is None
    assert result.inputs["stump"].note == "no finding recorded for the target lesion"


# --- operator ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "index", "years"),
    [
        (date(2021, 10, 1), date(2026, 10, 1), 5),
        (date(2022, 3, 1), date(2026, 10, 1), 5),  # 4 years 7 months
        (date(2022, 4, 1), date(2026, 10, 1), 4),  # 4 years 6 months exactly
        (date(2026, 2, 1), date(2026, 10, 1), 1),  # 8 months
        (date(2026, 6, 1), date(2026, 10, 1), 0),  # 4 months
    ],
)
def test_practice_years_round_as_xiao(first: date, index: date, years: int) -> None:
    assert practice_years(first, index) == years


def test_operator_derived_from_history(tables: MappingTables) -> None:
    history = [
        procedure(
            f"h{i}",
            CPT,
            "92943",
            when=f"{2021 + i // 40}-{1 + i % 12:02d}-15",
            outcome=SUCCESS if i % 10 else FAILURE,
            performer="dr1",
            pid="other",
        )
        for i in range(200)
    ]
    result = mapped(tables, operator_history=history)
    years = result.inputs["operator_cto_years"]
    assert years.value == 6  # first 2021-01-15 → 2026-10-01: 5 years 8 months
    assert years.rule == "operator.derived"
    assert result.inputs["operator_annual_cto_volume"].value == pytest.approx(200 / 6)
    rate = result.inputs["operator_last_year_success_rate"]
    assert isinstance(rate.value, float)
    assert 0 < rate.value < 1


def test_operator_override_observation(tables: MappingTables) -> None:
    obs = {
        "resourceType": "Observation",
        "id": "ov",
        "status": "final",
        "code": cc("http://cto-cds.org/fhir/CodeSystem/cto-lesion", "operator-cto-success-rate"),
        "focus": [{"reference": "Practitioner/dr1"}],
        "effectiveDateTime": "2026-09-01",
        "valueQuantity": {
            "value": 92,
            "unit": "%",
            "system": "http://unitsofmeasure.org",
            "code": "%",
        },
    }
    result = mapped(tables, operator_obs=[obs])
    assert result.inputs["operator_last_year_success_rate"].value == pytest.approx(0.92)
    assert result.inputs["operator_cto_years"].value is None  # no history, no registry


def test_no_operator_leaves_experience_unknown(tables: MappingTables) -> None:
    result = map_record(record(patient(), order(performer=None), operator=None), tables, TODAY)
    assert result.operator is None
    assert all(
        result.inputs[n].value is None
        for n in (
            "operator_annual_cto_volume",
            "operator_cto_years",
            "operator_last_year_success_rate",
        )
    )


def test_operator_registry_wins_and_says_so(tables: MappingTables, tmp_path: Any) -> None:
    (tmp_path / "operators.csv").write_text(
        "npi,practitioner_id,annual_cto_volume,cto_years,last_year_success_rate,as_of,comment\n"
        ",dr1,75,8,,2026-06-30,cath-lab registry\n"
    )
    site = load_tables(tmp_path)
    history = [
        procedure(
            "h1", CPT, "92943", when="2025-12-01", outcome=SUCCESS, performer="dr1", pid="other"
        )
    ]
    result = map_record(record(patient(), order(), operator_history=history), site, TODAY)
    assert result.inputs["operator_annual_cto_volume"].value == 75
    assert result.inputs["operator_annual_cto_volume"].rule == "operator.registry"
    assert result.inputs["operator_cto_years"].value == 8
    # The registry leaves the success rate blank: the next path (derived history) gives it.
    rate = result.inputs["operator_last_year_success_rate"]
    assert (rate.value, rate.rule) == (1.0, "operator.derived")


def test_operator_from_a_practitioner_role_performer() -> None:
    the_order = order(performer=None)
    the_order["performer"] = [{"reference": "PractitionerRole/r1"}]
    source = FileSource(
        [
            patient(),
            the_order,
            {
                "resourceType": "PractitionerRole",
                "id": "r1",
                "practitioner": {"reference": "Practitioner/dr1"},
            },
            {"resourceType": "Practitioner", "id": "dr1"},
            procedure("h1", CPT, "92943", when="2025-12-01", performer="dr1", pid="other"),
        ]
    )
    rec = asyncio.run(read_record(source, RecordRequest("p1", order_id="o1")))
    assert rec.operator_id == "dr1"
    assert [p.id for p in rec.operator_procedures] == ["h1"]


def _versioned(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource with its Practitioner and Patient references made version-specific."""
    text = json.dumps(resource)
    for ref in ("Practitioner/dr1", "PractitionerRole/r1", "Patient/p1"):
        text = text.replace(f'"{ref}"', f'"{ref}/_history/2"')
    return dict(json.loads(text))


@pytest.mark.parametrize("where", ["order", "career", "both", "role"])
def test_a_version_specific_performer_is_the_same_operator(
    tables: MappingTables, where: str
) -> None:
    """`Practitioner/dr1/_history/2` names dr1 at a version. In the order's performer it was no
    operator at all; in the career's performers the history was read as not this operator's
    (incomplete, every experience input unknown)."""
    the_order = order(when="2026-10-01")
    if where == "role":
        the_order["performer"] = [{"reference": "PractitionerRole/r1"}]
    career = [
        procedure(f"h{i}", CPT, "92943", when=f"{2018 + i}-03-01", outcome=SUCCESS, performer="dr1")
        for i in range(9)
    ]
    role = {
        "resourceType": "PractitionerRole",
        "id": "r1",
        "practitioner": {"reference": "Practitioner/dr1"},
    }
    if where in ("order", "both", "role"):
        the_order = _versioned(the_order)
        role = _versioned(role)
    if where in ("career", "both", "role"):
        career = [_versioned(p) for p in career]
    operator_keys = {
        "operator": {"resourceType": "Practitioner", "id": "dr1"},
        "operator_procedures": {
            "resourceType": "Bundle",
            "entry": [{"resource": r} for r in career],
        },
        "operator_observations": {"resourceType": "Bundle", "entry": []},
        "operator_role": role,
    }
    prefetch: dict[str, Any] = {
        "patient": patient(),
        **{k: {"resourceType": "Bundle", "entry": []} for k in ("conditions", "procedures")},
        **{k: {"resourceType": "Bundle", "entry": []} for k in ("observations", "reports")},
        "orders": {"resourceType": "Bundle", "entry": []},
        **operator_keys,
    }
    request = RecordRequest("p1", order=the_order)
    rec = asyncio.run(
        read_record(PrefetchSource(prefetch, None), request, None, history_planner(tables, TODAY))
    )
    assert rec.operator_id == "dr1"
    assert rec.incomplete == {}
    got = map_record(rec, tables, TODAY).inputs
    assert got["operator_cto_years"].value == 9  # 2018-03-01 → 2026-10-01: 8 years 7 months
    assert got["operator_annual_cto_volume"].value == 1.0  # the 2026 case is after the order
    assert got["operator_cto_years"].sources[0] == "Procedure/h0"


@pytest.mark.parametrize(
    ("fetched", "why"),
    [
        (
            {
                "error": "operator_procedures (Procedure search): not read in time (deadline of 3.0 s)"
            },
            "not read in time",
        ),
        ({"truncated": True}, "more results than allowed"),
    ],
    ids=["timeout", "capped"],
)
def test_incomplete_operator_history_is_never_a_definite_answer(
    tables: MappingTables, fetched: dict[str, Any], why: str
) -> None:
    """50 CTO-PCIs read of a career that did not fit: no volume of 50, no 'none last year'."""
    history = [
        procedure(
            f"h{i}",
            CPT,
            "92943",
            when=f"2025-{1 + i % 9:02d}-10",
            outcome=SUCCESS,
            performer="dr1",
            pid="other",
        )
        for i in range(50)
    ]
    problem = Problem.TIMEOUT if "error" in fetched else Problem.TRUNCATED
    rec = record(operator_history=history)
    rec.incomplete.pop("operator_procedures", None)
    assemble(
        {"operator_procedures": Fetched("operator_procedures", problem=problem, **fetched)}, rec
    )
    result = map_record(rec, tables, TODAY)
    for name in (
        "operator_annual_cto_volume",
        "operator_cto_years",
        "operator_last_year_success_rate",
    ):
        found = result.inputs[name]
        assert found.value is None, name
        assert found.evidence == "unknown"
        assert why in (found.note or ""), name


def test_a_history_trimmed_of_its_dates_is_never_a_definite_answer(tables: MappingTables) -> None:
    """A server that honoured `_elements` but dropped performed[x] (sekmet 0.1.1 when asked for
    `performed` only): undated cases would silently not count, so the inputs stay unknown."""
    trimmed = []
    for i in range(80):
        proc = procedure(
            f"h{i}", CPT, "92943", when=None, outcome=SUCCESS, performer="dr1", pid="other"
        )
        proc["meta"] = {"tag": [{"code": "SUBSETTED"}]}
        trimmed.append(proc)
    source = FileSource([patient(), {"resourceType": "Practitioner", "id": "dr1"}, *trimmed])
    request = RecordRequest("p1", order=order())
    rec = asyncio.run(read_record(source, request, None, history_planner(tables, TODAY)))
    assert rec.why["operator_procedures"] is Problem.INCOMPLETE
    result = map_record(rec, tables, TODAY)
    for name in (
        "operator_annual_cto_volume",
        "operator_cto_years",
        "operator_last_year_success_rate",
    ):
        found = result.inputs[name]
        assert found.value is None, name
        assert "trimmed" in (found.note or ""), name


# --- resources the mapping does not use ---------------------------------------------------------


@pytest.mark.parametrize(
    ("unrelated", "key", "element"),
    [
        (condition("c9", ICD10, "J45.909", onset="2019-02-30"), "conditions", "onsetDateTime"),
        (procedure("p9", CPT, "45378", when="2019-02-30"), "procedures", "performedDateTime"),
        (
            finding(
                "f9",
                "8867-4",
                {"valueQuantity": {"value": 72}},
                site=None,
                when="2019-02-30",
                system="http://loinc.org",
            ),
            "observations",
            "effectiveDateTime",
        ),
    ],
    ids=["condition", "procedure", "observation"],
)
def test_impossible_date_of_an_unrelated_resource_is_a_malformed_resource(
    tables: MappingTables, unrelated: dict[str, Any], key: str, element: str
) -> None:
    """2019-02-30 passes the format check but names no day. It used to reach the mapping, which
    dates every Condition, Procedure and Observation it reads, coded in a table or not, and fail
    it with ValueError: an asthma entry's typo cost the hook its card (a 500). Now the lean parse
    refuses it like any other bad element: named, its search incomplete, what depends on that
    search unknown, and the rest of the record mapped."""
    rec = record(patient(), order(), unrelated)
    (problem,) = rec.problems
    ref = f"{unrelated['resourceType']}/{unrelated['id']}"
    assert str(problem) == f"{ref}: {element}: Value error, no such day in the calendar"
    assert rec.why[key] is Problem.MALFORMED
    result = map_record(rec, tables, TODAY)
    if key != "observations":
        assert result.inputs["prior_cabg"].value is None
        assert ref in (result.inputs["prior_cabg"].note or "")
    assert result.inputs["target_vessel"].value is not None  # the order is still read


def test_practice_years_to_the_calendars_end() -> None:
    # The anniversary plus the round-up months fell after year 9999: a ValueError.
    assert practice_years(date(2020, 9, 20), date.max) == 7979


@pytest.mark.parametrize(
    ("authored", "registry_used"),
    [("2026-10-01", True), ("2025-07-01", True), ("2025-06-29", False), ("2019-03-01", False)],
)
def test_a_registry_checked_over_a_year_after_the_order_is_not_used(
    tmp_path: Any, authored: str, registry_used: bool
) -> None:
    """Validation on past cases: a 2026 registry row counts the operator's later cases; the
    history at the time tells their experience then (the score's point, Xiao 2021)."""
    (tmp_path / "operators.csv").write_text(
        "npi,practitioner_id,annual_cto_volume,cto_years,last_year_success_rate,as_of,comment\n"
        ",dr1,75,8,0.95,2026-06-30,cath-lab registry\n"
    )
    site = load_tables(tmp_path)
    history = [
        procedure("h1", CPT, "92943", when="2017-12-01", outcome=SUCCESS, performer="dr1", pid="x")
    ]
    the_order = order(when=authored)
    result = map_record(record(patient(), the_order, operator_history=history), site, TODAY)
    volume = result.inputs["operator_annual_cto_volume"]
    if registry_used:
        assert (volume.value, volume.rule) == (75, "operator.registry")
        return
    assert volume.rule == "operator.derived"
    assert volume.value != 75
    for name in ("operator_annual_cto_volume", "operator_cto_years"):
        note = result.inputs[name].note or ""
        assert note.startswith("site registry"), note
        assert "is as of 2026-06-30, over a year after this order: not used" in note
