"""Mapping tables: the shipped defaults, every kind of bad row (named by file:line), site overrides,
lookups by (system, code) only, and the FHIR ValueSet/ConceptMap export."""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
import yaml
from fhir.resources.R4B.codesystem import CodeSystem
from fhir.resources.R4B.conceptmap import ConceptMap
from fhir.resources.R4B.valueset import ValueSet
from pydantic import ValidationError

from cds import score_json
from cds.errors import ConfigError
from cds.mapping.codes import (
    CPT,
    ICD9CM,
    ICD10CM,
    ICD10PCS,
    LOINC,
    NCDR,
    NCDR_QUESTIONS,
    SNOMED,
)
from cds.mapping.export import concept_map, fhir_code, prefix_regex, validate, value_sets
from cds.mapping.tables import (
    CODE_COLUMNS,
    DEFAULT_DIR,
    OPERATOR_COLUMNS,
    CodeRow,
    MappingTables,
    Rules,
    load_tables,
)
from tests.scoring.cases import NOTHING_PRESENT

LOCAL = Rules().local_system
HEADER = ",".join(CODE_COLUMNS)
OP_HEADER = ",".join(OPERATOR_COLUMNS)
# A valid row to vary: a site's own cath-lab code for a blunt stump.
GOOD = "site.stump,stump,Observation,value,http://hospital.example/cath,BL,exact,blunt,lesion,site,true,local"


@pytest.fixture(scope="module")
def tables() -> MappingTables:
    return load_tables()


def site_dir(
    tmp_path: Path,
    codes: list[str] | None = None,
    operators: list[str] | None = None,
    rules: str | None = None,
) -> Path:
    """A site directory with the given files (codes/operators: data lines after the header)."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    if codes is not None:
        (site / "codes.csv").write_text("\n".join([HEADER, *codes]) + "\n", encoding="utf-8")
    if operators is not None:
        (site / "operators.csv").write_text("\n".join([OP_HEADER, *operators]) + "\n")
    if rules is not None:
        (site / "rules.yaml").write_text(rules)
    return site


def load_error(site: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_tables(site)
    return str(info.value)


def ids(rows: list[CodeRow]) -> set[str]:
    return {row.id for row in rows}


# --- the shipped defaults ---------------------------------------------------------------------


def test_defaults_cover_every_coded_input_and_aux_concept(tables: MappingTables) -> None:
    concepts = {row.concept for row in tables.rows}
    # age/sex come from Patient, target_vessel from `vessel` body sites; `cabg` is not used yet.
    assert concepts == {
        "prior_cabg",
        "prior_cabg_target_vessel",
        "prior_mi",
        "stump",
        "proximal_cap_ambiguity",
        "calcification",
        "bend_gt_45_in_occlusion",
        "tortuosity",
        "occlusion_length_mm",
        "distal_vessel_disease",
        "rentrop_grade",
        "interventional_collaterals",
        "in_stent_occlusion",
        "ostial_location",
        "retry_lesion",
        "retrograde_approach",
        "operator_annual_cto_volume",
        "operator_cto_years",
        "operator_last_year_success_rate",
        "cto_pci",
        "prior_pci",
        "vessel",
        "ostium",
        "outcome",
        "in_stent_restenosis",
    }
    assert all(row.enabled for row in tables.rows)
    assert tables.operators == ()
    assert tables.rules == Rules()


def test_default_rows_are_graded_documented_and_named(tables: MappingTables) -> None:
    for row in tables.rows:
        assert row.verified in ("V", "V1"), row.id  # never NV, and `site` is for sites
        assert row.comment, row.id  # the display as read
        assert row.id.startswith(f"{row.concept}."), row.id
        if row.system == LOCAL:
            assert row.verified == "V", row.id  # we define the local codes
    v1 = {row.id for row in tables.rows if row.verified == "V1"}
    # terminology.md grades exactly these V1 (one weaker source).
    assert v1 == {
        "prior_mi.sct.1755008",
        "cto_pci.cpt.92944",
        "cto_pci.sct.713617008",
        "outcome.sct.385669000",
        "outcome.sct.385670004",
        "outcome.sct.385671000",
    }


def test_cpt_comments_are_paraphrases(tables: MappingTables) -> None:
    cpt = [row for row in tables.rows if row.system == CPT]
    assert len(cpt) == 16 + 8 + 2  # CABG, PCI, CTO-PCI
    assert all("paraphrased" in row.comment for row in cpt)


def _codes(text: str) -> set[str]:
    return set(text.split())


# terminology.md §4.2, DICOM codes only (the CREDS-only 194142006/244258000/56322004 are left out).
VESSEL_CODES = {
    "LM": _codes("3227004 1256091001 76862008"),
    "LAD": _codes(
        "59438005 68787002 91748002 36672000 91750005 91751009 91752002 244251006 91749005"
    ),
    "LCX": _codes(
        "57396003 52433000 91753007 6511003 91754001 91755000 91756004 75902001 91757008 "
        "91758003 91759006 91760001 57823005"
    ),
    "RAMUS": _codes("244252004"),
    "RCA": _codes(
        "13647002 91083009 450960006 41879009 53655008 12800002 91761002 91762009 91763004 "
        "56789007 22765000 17269004"
    ),
    "GRAFT": _codes("264293000"),
}


def test_vessel_groups_are_the_terminology_table(tables: MappingTables) -> None:
    vessel = [row for row in tables.rows if row.concept == "vessel"]
    got: dict[str, set[str]] = {}
    for row in vessel:
        assert (row.resource, row.element, row.system, row.evidence) == (
            "*",
            "bodySite",
            SNOMED,
            "lesion",
        )
        got.setdefault(row.meaning, set()).add(row.code)
    assert got == VESSEL_CODES
    ostium = {row.code for row in tables.rows if row.concept == "ostium"}
    assert ostium == {"264114003", "1256091001", "56789007", "76862008"}


def test_rules_yaml_documents_every_field_with_its_default() -> None:
    data = yaml.safe_load((DEFAULT_DIR / "rules.yaml").read_text())
    defaults = Rules().model_dump(mode="json")
    assert set(data) == set(Rules.model_fields)  # a new Rules field needs its line in rules.yaml
    for section in ("success", "operator"):
        assert set(data[section]) == set(defaults[section])
    assert Rules.model_validate(data).model_dump(mode="json") == defaults


def test_codesystem_defines_every_local_code(tables: MappingTables) -> None:
    raw = json.loads((DEFAULT_DIR / "cto-lesion.codesystem.json").read_text())
    cs = CodeSystem.model_validate(raw)
    assert (cs.url, cs.status, cs.content, cs.caseSensitive) == (LOCAL, "active", "complete", True)
    concepts = cs.concept or []
    codes = [c.code for c in concepts]
    assert len(codes) == len(set(codes)) == cs.count
    assert all(c.definition and c.display for c in concepts)
    local = {row.code for row in tables.rows if row.system == LOCAL}
    assert local <= set(codes), local - set(codes)
    scores = {
        "operator-cto-score",
        "operator-cto-lesion-points",
        "operator-cto-operator-adjustment",
        "j-cto-score",
        "progress-cto-score",
        "recharge-score",
        "cl-score",
        "ora-score",
        "castle-score",
        "progress-complications-score",
    }
    from cds.output.cards import OVERRIDE_REASONS

    overrides = {code for code, _ in OVERRIDE_REASONS}
    assert set(codes) == local | scores | overrides  # nothing defined that nothing uses


def test_cid_3716_answers_per_concept(tables: MappingTables) -> None:
    def answers(concept: str) -> dict[str, str]:
        return {
            r.code: r.meaning
            for r in tables.rows
            if (r.concept, r.element, r.system) == (concept, "value", SNOMED)
        }

    grades = {"260413007": "none", "255604002": "mild", "6736007": "moderate", "24484000": "severe"}
    # Mild to Moderate → moderate for calcification only (score-invariant, test below); Moderate to
    # Severe decides severe_calcification and CASTLE tortuosity, so it is mapped for neither.
    assert answers("calcification") == {**grades, "371923003": "moderate"}
    assert answers("tortuosity") == grades


def test_mild_to_moderate_calcification_mapping_changes_no_score() -> None:
    """371923003 Mild to Moderate → moderate is justified only while no score tells mild from
    moderate calcification (codes.csv note); this fails when one starts to."""

    def scored(grade: str) -> object:
        report = score_json({**NOTHING_PRESENT, "calcification": grade})
        text = json.dumps(report, sort_keys=True)
        return json.loads(text.replace(f'"value": "{grade}"', '"value": "<grade>"'))  # echoed input

    assert scored("mild") == scored("moderate")
    # ... while the comparison itself sees calcification changes.
    assert scored("none") != scored("mild")
    assert scored("severe") != scored("moderate")


# --- lookups ----------------------------------------------------------------------------------

OID_ICD10CM = "urn:oid:2.16.840.1.113883.6.90"


@pytest.mark.parametrize(
    ("resource", "element", "system", "code", "expected"),
    [
        ("Condition", "code", ICD10CM, "Z95.1", {"prior_cabg.icd10cm.Z95.1"}),
        ("Condition", "code", ICD10CM, "Z951", {"prior_cabg.icd10cm.Z95.1"}),
        ("Condition", "code", OID_ICD10CM, "Z95.1", {"prior_cabg.icd10cm.Z95.1"}),
        ("Condition", "code", OID_ICD10CM, " z951 ", {"prior_cabg.icd10cm.Z95.1"}),
        ("Condition", "code", ICD10CM, "I25.710", {"prior_cabg.icd10cm.I25.7"}),
        ("Condition", "code", ICD10CM, "I25810", {"prior_cabg.icd10cm.I25.810"}),
        ("Condition", "code", ICD10CM, "I21.A1", {"prior_mi.icd10cm.I21"}),
        ("Condition", "code", "urn:oid:2.16.840.1.113883.6.103", "410.71", {"prior_mi.icd9cm.410"}),
        ("Condition", "code", ICD9CM, "V45.81", {"prior_cabg.icd9cm.V45.81"}),
        ("Procedure", "code", ICD10PCS, "02100Z9", {"prior_cabg.icd10pcs.0210"}),
        (
            "Procedure",
            "code",
            "urn:oid:2.16.840.1.113883.6.4",
            "02133Z4",
            {"prior_cabg.icd10pcs.0213"},
        ),
        ("Procedure", "code", ICD10PCS, "02703DZ", {"prior_pci.icd10pcs.0270"}),
        ("Procedure", "code", ICD9CM, "36.19", {"prior_cabg.icd9proc.36.19"}),
        ("Procedure", "code", CPT, "92943", {"prior_pci.cpt.92943", "cto_pci.cpt.92943"}),
        (
            "ServiceRequest",
            "code",
            "urn:oid:2.16.840.1.113883.6.12",
            "92943",
            {"cto_pci.cpt.92943"},
        ),
        ("Observation", "bodySite", SNOMED, "68787002", {"vessel.sct.68787002"}),
        (
            "Procedure",
            "bodySite",
            SNOMED,
            "56789007",
            {"vessel.sct.56789007", "ostium.sct.56789007"},
        ),
        ("Procedure", "outcome", NCDR, "100-3", {"outcome.ncdr.100-3"}),
        (
            "Observation",
            "code",
            "http://hl7.org/fhir/us/fhir-registry-protocols-ig/CodeSystem/NCDRQuestionCodesCS",
            "100013013",
            {"in_stent_restenosis.ncdr.100013013"},
        ),
        (
            "Observation",
            "value",
            "urn:oid:2.16.840.1.113883.6.96",
            "24484000",
            {"calcification.value.sct.24484000", "tortuosity.value.sct.24484000"},
        ),
        ("Observation", "value", LOCAL, "no-stump", {"stump.value.local.no-stump"}),
    ],
)
def test_lookup_finds(
    tables: MappingTables,
    resource: str,
    element: str,
    system: str,
    code: str,
    expected: set[str],
) -> None:
    assert ids(tables.lookup(resource, element, system, code)) == expected


@pytest.mark.parametrize(
    ("resource", "element", "system", "code", "why"),
    [
        ("Condition", "code", ICD10CM, "I25.10", "native-vessel atherosclerosis is no graft"),
        ("Condition", "code", ICD10CM, "I25", "a prefix row does not match a shorter code"),
        ("Procedure", "code", ICD10CM, "Z95.1", "Z95.1 rows are for Condition only"),
        ("Condition", "code", ICD9CM, "361.9", "retinal detachment: same digits as proc 36.19"),
        ("Procedure", "code", ICD9CM, "41.2", "splenotomy: same digits as diagnosis 412"),
        ("Procedure", "code", ICD10PCS, "02C03ZZ", "extirpation is not shipped"),
        ("Condition", "code", LOINC, "22298006", "a SNOMED code under another system"),
        ("Observation", "code", NCDR_QUESTIONS, "100013014", "in-stent thrombosis is not ISR"),
        ("Observation", "value", SNOMED, "371924009", "Moderate to Severe stays unknown"),
        ("Observation", "code", SNOMED, "68787002", "a body site in Observation.code"),
        ("Procedure", "outcome", SNOMED, "", "empty code"),
    ],
)
def test_lookup_does_not_find(
    tables: MappingTables, resource: str, element: str, system: str, code: str, why: str
) -> None:
    assert tables.lookup(resource, element, system, code) == [], why


def test_display_text_is_never_matched(tables: MappingTables) -> None:
    assert set(inspect.signature(MappingTables.lookup).parameters) == {
        "self",
        "resource",
        "element",
        "system",
        "code",
    }
    for row in tables.rows:
        display = row.comment.split(";")[0]
        for resource in ("Condition", "Procedure", "Observation", "ServiceRequest"):
            found = tables.lookup(resource, row.element, row.system, display)
            assert row.id not in ids(found), (row.id, display)


# --- bad rows: each names its file and line ---------------------------------------------------


def _row(**changes: str) -> str:
    values = dict(zip(CODE_COLUMNS, GOOD.split(","), strict=True))
    values.update(changes)
    return ",".join(values[c] for c in CODE_COLUMNS)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (_row(concept="blunt_stump"), "concept 'blunt_stump' is neither a canonical input"),
        (_row(element="display"), "element 'display' is not one of"),
        (_row(resource="Encounter"), "resource 'Encounter' is not one of"),
        (_row(meaning="round"), "meaning 'round' is not one of tapered, blunt, no_stump"),
        (_row(element="code", meaning="boolean:round"), "meaning 'round' is not one of"),
        (_row(element="code", meaning="quantity:in"), "meaning 'quantity:in' is not a value"),
        (_row(concept="vessel", element="bodySite", meaning="LEFT"), "meaning 'LEFT'"),
        (_row(concept="outcome", element="outcome", meaning="ok"), "meaning 'ok'"),
        (_row(concept="cto_pci", element="code", meaning="boolean"), "meaning 'boolean'"),
        (
            _row(concept="in_stent_restenosis", element="code", meaning="quantity:mm"),
            "meaning 'quantity:mm' is not one of true, boolean",
        ),
        (_row(concept="rentrop_grade", meaning="4"), "meaning '4' is not a valid rentrop_grade"),
        (_row(verified="NV"), "verified NV rows are never shipped"),
        (_row(verified="maybe"), "verified 'maybe' is not one of"),
        (_row(system=""), "system and code are required"),
        (_row(code=""), "system and code are required"),
        (_row(code="B L"), "contains white space"),
        (  # a dead row that never overrides the default it was meant to
            _row(code="BL\u200b"),
            "code 'BL\\u200b' contains U+200B (ZERO WIDTH SPACE), which no code holds",
        ),
        (_row(code="\u2060BL"), "contains U+2060 (WORD JOINER)"),
        (_row(code="B\x7fL"), "contains U+007F (a control character)"),
        (
            _row(system="http://hospital.example/\u200bcath"),
            "system 'http://hospital.example/\\u200b",
        ),
        (  # an empty ICD prefix would match every diagnosis: prior_cabg for every patient
            _row(
                concept="prior_cabg",
                resource="Condition",
                element="code",
                system=ICD10CM,
                code=".",
                match="prefix",
                meaning="true",
                evidence="patient",
            ),
            "code '.' is empty once normalised",
        ),
        (_row(system=ICD10CM, code="..", match="exact"), "code '..' is empty once normalised"),
        (_row(system="hospital cath"), "is not a URI"),
        (_row(match="regex"), "match 'regex' is not one of"),
        (_row(evidence="strong"), "evidence 'strong' is not one of"),
        (_row(enabled="yes"), "enabled 'yes' is not one of"),
        (_row(id="site stump"), "id 'site stump' must be"),
        (GOOD.rsplit(",", 1)[0], "11 fields, header has 12"),
        (GOOD + ",extra", "13 fields, header has 12"),
        ('site.x,"stump', "bad CSV quoting"),
    ],
)
def test_bad_code_row_names_file_and_line(tmp_path: Path, line: str, reason: str) -> None:
    site = site_dir(tmp_path, ["# a comment line still counts for the line number", line])
    message = load_error(site)
    assert message.startswith(f"{site / 'codes.csv'}:3: "), message
    assert reason in message


def test_good_row_loads_so_the_bad_row_cases_differ_by_one_column(tmp_path: Path) -> None:
    tables = load_tables(site_dir(tmp_path, [GOOD]))
    assert ids(tables.lookup("Observation", "value", "http://hospital.example/cath", "BL")) == {
        "site.stump"
    }
    isr = _row(concept="in_stent_restenosis", element="code", meaning="boolean")
    assert load_tables(site_dir(tmp_path, [isr])).rows[-1].meaning == "boolean"


def test_a_short_prefix_loads_with_a_warning_naming_the_row(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    row = _row(system=ICD10CM, code="I.2", match="prefix", concept="prior_mi", element="code")
    site = site_dir(tmp_path, [row.replace(",blunt,", ",true,")])
    with caplog.at_level("WARNING", logger="cds.mapping"):
        load_tables(site)
    assert [r.getMessage() for r in caplog.records] == [
        f"{site / 'codes.csv'}:2: prefix 'I2' matches every {ICD10CM} code starting so: "
        "check it is meant"
    ]
    caplog.clear()
    load_tables()  # the shipped prefixes are long enough
    assert not caplog.records


def test_duplicate_id_names_both_lines(tmp_path: Path) -> None:
    site = site_dir(tmp_path, [GOOD, _row(code="TA", meaning="tapered")])
    path = site / "codes.csv"
    assert load_error(site) == f"{path}:3: id 'site.stump' already used at {path}:2"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (GOOD, _row(id="site.other")),
        (  # the key compares normalised systems and codes: OID vs URI, dot vs none
            "a,prior_cabg,Condition,code,http://hl7.org/fhir/sid/icd-10-cm,Z95.1,exact,true,patient,V,true,",
            "b,prior_cabg,Condition,code,urn:oid:2.16.840.1.113883.6.90,z951,exact,true,patient,V,true,",
        ),
    ],
)
def test_duplicate_key_names_both_lines(tmp_path: Path, first: str, second: str) -> None:
    site = site_dir(tmp_path, [first, second])
    path = site / "codes.csv"
    assert load_error(site) == (f"{path}:3: same concept/resource/element/system/code as {path}:2")


def test_site_id_may_not_reuse_a_default_id_for_another_key(tmp_path: Path) -> None:
    site = site_dir(tmp_path, [_row(id="prior_cabg.icd10cm.Z95.1")])
    assert "id 'prior_cabg.icd10cm.Z95.1' already used at" in load_error(site)


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("id,concept,resource\n", 1, "header: missing ['element'"),
        (HEADER + ",display\n", 1, "unknown ['display']"),
        (
            "# comments first\n\n" + HEADER.replace("verified", "grade") + "\n",
            3,
            "missing ['verified']",
        ),
        ("# only comments\n", 1, "empty file"),
        (HEADER + ",code\n", 1, "header: code repeated"),
        (HEADER.replace("comment", "code") + "\n", 1, "header: code repeated"),
    ],
)
def test_bad_header_names_its_line(tmp_path: Path, text: str, line: int, reason: str) -> None:
    site = site_dir(tmp_path)
    (site / "codes.csv").write_text(text)
    message = load_error(site)
    assert message.startswith(f"{site / 'codes.csv'}:{line}: "), message
    assert reason in message


def test_excel_bom_is_accepted(tmp_path: Path) -> None:
    site = site_dir(tmp_path)
    (site / "codes.csv").write_text(HEADER + "\n" + GOOD + "\n", encoding="utf-8-sig")
    assert "site.stump" in ids(list(load_tables(site).rows))


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("12345,,60,5,0.9,,", "npi '12345' is not 10 digits"),
        ("123456789X,,60,5,0.9,,", "is not 10 digits"),
        (
            "１２３４５６７８９３,,60,5,0.9,,",
            "npi '１２３４５６７８９３' is not 10 digits",
        ),  # never an EHR's
        (",,60,5,0.9,,", "npi or practitioner_id is required"),
        ("1234567893,,60,5,1.5,,", "last_year_success_rate '1.5' is outside 0..1"),
        ("1234567893,,60,5,92%,,", "last_year_success_rate '92%' is not a number"),
        ("1234567893,,-1,5,0.9,,", "annual_cto_volume '-1' is outside"),
        ("1234567893,,60,nan,0.9,,", "cto_years 'nan' is not a number"),
        # float() takes each of these; scoring then blamed the patient's record.
        ("1234567893,,inf,5,0.9,,", "annual_cto_volume 'inf' is not a number"),
        ("1234567893,,1e400,5,0.9,,", "annual_cto_volume '1e400' is not a number"),
        ("1234567893,,60,5,1e-1,,", "last_year_success_rate '1e-1' is not a number"),
        ("1234567893,," + "9" * 5000 + ",5,0.9,,", "annual_cto_volume '" + "9" * 40 + "…' is not"),
        ("1234567893,,1_000,5,0.9,,", "annual_cto_volume '1_000' is not a number"),
        ("1234567893,,٦٠,5,0.9,,", "annual_cto_volume '٦٠' is not a number"),
        ("1234567893,,1001,5,0.9,,", "annual_cto_volume '1001' is outside 0..1000"),
        ("1234567893,,60,81,0.9,,", "cto_years '81' is outside 0..80"),
        ("1234567893,,60,5,0.9,yesterday,", "as_of 'yesterday' is not a date YYYY-MM-DD"),
        ("1234567893,,60,5,0.9,2999-13-45,", "as_of '2999-13-45' is not a date YYYY-MM-DD"),
        ("1234567893,,60,5,0.9,20261101,", "as_of '20261101' is not a date YYYY-MM-DD"),
        ("1234567893,,60,5,0.9", "5 fields, header has 7"),
        (",prac-17\u200b,60,5,0.9,,", "practitioner_id 'prac-17\\u200b' contains U+200B"),
    ],
)
def test_bad_operator_row_names_file_and_line(tmp_path: Path, line: str, reason: str) -> None:
    site = site_dir(tmp_path, operators=[line])
    message = load_error(site)
    assert message.startswith(f"{site / 'operators.csv'}:2: "), message
    assert reason in message


def test_an_as_of_in_the_future_is_refused_naming_file_and_line(tmp_path: Path) -> None:
    """It loaded and the card showed "as of 2062-11-01" (a slip for 2026) to the cath-lab team.
    One day ahead of UTC passes: a site at UTC+14 may write its own date."""
    today = date(2026, 12, 8)
    rows = ["1234567893,,60,5,0.9,2026-12-08,", ",prac-1,70,6,0.9,2026-12-09,"]
    site = site_dir(tmp_path, operators=rows)
    assert [o.as_of for o in load_tables(site, today=today).operators] == [
        "2026-12-08",
        "2026-12-09",
    ]
    site = site_dir(tmp_path, operators=[*rows, ",prac-2,70,6,0.9,2062-11-01,"])
    with pytest.raises(ConfigError) as info:
        load_tables(site, today=today)
    assert str(info.value) == (
        f"{site / 'operators.csv'}:4: as_of '2062-11-01' is in the future (today is 2026-12-08"
        " UTC): the date the figures were checked"
    )
    # Without a day given, today is the clock's (UTC).
    site = site_dir(tmp_path, operators=[f",prac-3,70,6,0.9,{date.max.isoformat()},"])
    assert "as_of '9999-12-31' is in the future (today is " in load_error(site)


def test_duplicate_operator_is_refused(tmp_path: Path) -> None:
    site = site_dir(tmp_path, operators=["1234567893,p1,60,5,0.9,,", "1234567893,p2,10,1,0.5,,"])
    path = site / "operators.csv"
    assert load_error(site) == f"{path}:3: npi 1234567893 already used at {path}:2"


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        (
            "cabg_min_days_before: 90\nbogus_rule: 1\n",
            2,
            "bogus_rule: Extra inputs are not permitted",
        ),
        ("\n\ncabg_min_days_before: ninety\n", 3, "cabg_min_days_before: Input should be a valid"),
        (
            "prior_mi_exclude_days: -1\n",
            1,
            "prior_mi_exclude_days: Input should be greater than or equal to 0",
        ),
        # Removed: nothing in a record dates an occlusion, so no rule could read it.
        ("in_stent_min_days: 90\n", 1, "in_stent_min_days: Extra inputs are not permitted"),
        (
            "local_system: cto-lesion\n",
            1,
            "local_system: String should match pattern",
        ),
        (
            "# site\nsuccess:\n  partial_counts_as_success: maybe\n",
            3,
            "success.partial_counts_as_success: Input should be a valid boolean",
        ),
        ("operator:\n  last_year_day: 300\n", 2, "operator.last_year_day: Extra inputs"),
        (  # every scoring then failed with OverflowError (date - timedelta)
            "operator:\n  last_year_days: 800000\n",
            2,
            "operator.last_year_days: Input should be less than or equal to 36500",
        ),
        ("cabg_min_days_before: 36501\n", 1, "less than or equal to 36500"),
        # Strict types: each of these was coerced (to 1, 1, true, true, 30, 30).
        ("cabg_min_days_before: yes\n", 1, "cabg_min_days_before: Input should be a valid integer"),
        ("operator:\n  last_year_days: true\n", 2, "last_year_days: Input should be a valid int"),
        ("lm_ramus_as_lad: 'yes'\n", 1, "lm_ramus_as_lad: Input should be a valid boolean"),
        ("lm_ramus_as_lad: 1\n", 1, "lm_ramus_as_lad: Input should be a valid boolean"),
        ("\ncabg_min_days_before: '30'\n", 2, "cabg_min_days_before: Input should be a valid int"),
        ("cabg_min_days_before: 30.0\n", 1, "cabg_min_days_before: Input should be a valid int"),
        ("operator:\n  primary_function_codes: [PRIMARY, 42]\n", 2, "Input should be a valid str"),
        # Duplicate keys: YAML keeps the last one.
        (
            "lm_ramus_as_lad: false\n# again\nlm_ramus_as_lad: true\n",
            3,
            "duplicate key 'lm_ramus_as_lad' (first at line 1)",
        ),
        (
            "operator:\n  last_year_days: 200\noperator:\n  round_up_after_months: 3\n",
            3,
            "duplicate key 'operator' (first at line 1)",
        ),
        (
            "success: {partial_counts_as_success: true, partial_counts_as_success: false}\n",
            1,
            "duplicate key",
        ),
        ("prior_mi_exclude_days: 99999999999\n", 1, "less than or equal to 36500"),
        ("lm_ramus_as_lad: [true\n", 2, "invalid YAML"),
        ("- a\n- b\n", 1, "expected a mapping of rule names"),
    ],
)
def test_bad_rules_name_file_and_line(tmp_path: Path, text: str, line: int, reason: str) -> None:
    site = site_dir(tmp_path, rules=text)
    message = load_error(site)
    assert message.startswith(f"{site / 'rules.yaml'}:{line}: "), message
    assert reason in message


def test_strict_rules_still_take_what_yaml_writes_for_each_type(tmp_path: Path) -> None:
    text = "cabg_min_days_before: 60\nlm_ramus_as_lad: true\noperator:\n  primary_function_codes: [P1, '2']\n"
    rules = load_tables(site_dir(tmp_path, rules=text)).rules
    assert (rules.cabg_min_days_before, rules.lm_ramus_as_lad) == (60, True)
    assert rules.operator.primary_function_codes == ("P1", "2")


@pytest.mark.parametrize(
    ("content", "line", "reason"),
    [
        ("# café\nlm_ramus_as_lad: true\n".encode("latin-1"), 1, "not UTF-8 (byte 0xe9)"),
        ("lm_ramus_as_lad: true\n".encode("utf-16"), 1, "not UTF-8 (byte 0xff)"),
        ("# ok\n# façade\n".encode("latin-1"), 2, "not UTF-8 (byte 0xe7)"),
        (b"x: " + b"[" * 100_000 + b"]" * 100_000 + b"\n", 1, "nested more than 16 levels deep"),
        (
            "".join(" " * i + "a:\n" for i in range(3000)).encode() + b" " * 3000 + b"a: 1\n",
            16,
            "nested more than 16 levels deep",
        ),
        (b"a: &a [1, 2]\nb: [*a, *a]\n", 2, "aliases (*name) are not allowed"),
    ],
    ids=["latin-1", "utf-16", "latin-1-line-2", "deep-flow", "deep-block", "alias"],
)
def test_rules_that_are_not_utf8_or_nest_too_deep_name_file_and_line(
    tmp_path: Path, content: bytes, line: int, reason: str
) -> None:
    site = site_dir(tmp_path)
    (site / "rules.yaml").write_bytes(content)
    message = load_error(site)
    assert message.startswith(f"{site / 'rules.yaml'}:{line}: "), message
    assert reason in message


def test_codes_that_are_not_utf8_name_the_line(tmp_path: Path) -> None:
    site = site_dir(tmp_path)
    (site / "codes.csv").write_bytes((HEADER + "\n" + GOOD + " é\n").encode("latin-1"))
    assert load_error(site).startswith(f"{site / 'codes.csv'}:2: not UTF-8 (byte 0xe9)")


# --- site overrides ---------------------------------------------------------------------------

Z951 = "prior_cabg,Condition,code,http://hl7.org/fhir/sid/icd-10-cm,Z95.1,exact,true"


def test_site_row_replaces_the_default_with_the_same_key(
    tmp_path: Path, tables: MappingTables
) -> None:
    site = site_dir(tmp_path, [f"site.z951,{Z951},claim,site,true,coded by billing here"])
    merged = load_tables(site)
    found = merged.lookup("Condition", "code", OID_ICD10CM, "Z95.1")
    assert [(r.id, r.evidence, r.verified) for r in found] == [("site.z951", "claim", "site")]
    assert found[0].origin == f"{site / 'codes.csv'}:2"
    assert len(merged.rows) == len(tables.rows)
    assert merged.sources == (str(DEFAULT_DIR), str(site))


def test_site_row_disables_a_default(tmp_path: Path, tables: MappingTables) -> None:
    assert tables.lookup("Condition", "code", ICD10CM, "Z95.1")
    merged = load_tables(site_dir(tmp_path, [f"prior_cabg.icd10cm.Z95.1,{Z951},patient,V,false,"]))
    assert merged.lookup("Condition", "code", ICD10CM, "Z95.1") == []
    assert merged.lookup("Condition", "code", ICD10CM, "V45.81") == []  # another system
    assert merged.lookup("Condition", "code", ICD9CM, "V45.81")  # other rows unaffected
    assert len(merged.rows) == len(tables.rows)
    assert sum(r.enabled for r in merged.rows) == len(tables.rows) - 1


def test_site_row_adds_a_code(tmp_path: Path, tables: MappingTables) -> None:
    merged = load_tables(site_dir(tmp_path, [GOOD]))
    assert len(merged.rows) == len(tables.rows) + 1
    assert ids(merged.lookup("Observation", "value", "http://hospital.example/cath", "BL")) == {
        "site.stump"
    }
    assert tables.lookup("Observation", "value", "http://hospital.example/cath", "BL") == []


def test_site_operators_and_rules_override(tmp_path: Path) -> None:
    site = site_dir(
        tmp_path,
        operators=["1234567893,prac-17,72,6,0.93,2026-11-01,", ",prac-9,,,0.5,,"],
        rules="cabg_min_days_before: 180\nsuccess:\n  partial_counts_as_success: true\n",
    )
    merged = load_tables(site)
    entry = merged.operator_entry("1234567893", None)
    assert entry is not None
    assert (entry.annual_cto_volume, entry.cto_years, entry.last_year_success_rate) == (
        72,
        6,
        0.93,
    )
    assert merged.operator_entry(None, "prac-17") == entry
    other = merged.operator_entry("9999999999", "prac-9")
    assert other is not None
    assert other.annual_cto_volume is None
    assert merged.operator_entry("9999999999", None) is None
    assert merged.rules.cabg_min_days_before == 180
    assert merged.rules.success.partial_counts_as_success is True
    assert merged.rules.operator.last_year_days == 365  # untouched keys keep their default
    assert merged.rules.prior_mi_exclude_days == Rules().prior_mi_exclude_days


def test_missing_site_dir_is_an_error(tmp_path: Path) -> None:
    assert (
        load_error(tmp_path / "nope") == f"{tmp_path / 'nope'}: mappings directory does not exist"
    )


# --- FHIR export ------------------------------------------------------------------------------


def _include_codes(vs: dict[str, object], system: str) -> set[str]:
    compose = vs["compose"]
    assert isinstance(compose, dict)
    return {
        c["code"]
        for inc in compose["include"]
        if inc["system"] == system
        for c in inc.get("concept", [])
    }


def _filters(vs: dict[str, object], system: str) -> list[str]:
    compose = vs["compose"]
    assert isinstance(compose, dict)
    return [
        f["value"]
        for inc in compose["include"]
        if inc["system"] == system
        for f in inc.get("filter", [])
    ]


def test_value_sets_validate_and_hold_the_codes(tables: MappingTables) -> None:
    sets = {vs["id"]: vs for vs in value_sets(tables)}
    for vs in sets.values():
        ValueSet.model_validate(vs)
    concepts = {row.concept for row in tables.rows}
    answers = {row.concept for row in tables.rows if row.element == "value"}
    assert set(sets) == {c.replace("_", "-") for c in concepts} | {
        c.replace("_", "-") + "-answers" for c in answers
    }
    cabg = sets["prior-cabg"]
    assert {"Z95.1", "I25.810"} == _include_codes(cabg, ICD10CM)  # dots put back
    assert {"V45.81", "36.10", "36.19"} <= _include_codes(cabg, ICD9CM)
    assert _filters(cabg, ICD10CM) == [r"I25\.7.*"]
    assert _filters(cabg, ICD10PCS) == ["0210.*", "0211.*", "0212.*", "0213.*"]
    assert "33516" in _include_codes(cabg, CPT)
    calc = sets["calcification-answers"]
    assert _include_codes(calc, SNOMED) == {
        "260413007",
        "255604002",
        "371923003",
        "6736007",
        "24484000",
    }
    assert _include_codes(calc, LOCAL) == {"none", "mild", "moderate", "severe"}
    assert "122132" in _include_codes(
        sets["calcification"], "http://dicom.nema.org/resources/ontology/DCM"
    )


@pytest.mark.parametrize(
    ("row_id", "matches", "misses"),
    [
        (
            "prior_cabg.icd10cm.I25.7",
            ["I25.7", "I25.710", "I25.799"],
            ["I25.10", "I25.810", "I2571"],
        ),
        ("prior_mi.icd10cm.I21", ["I21", "I21.A1", "I21.01"], ["I22.0", "I210", "I21A1"]),
        ("prior_mi.icd9cm.410", ["410", "410.71"], ["41.0", "4107"]),
        ("prior_cabg.icd10pcs.0210", ["02100Z9", "0210"], ["02110Z9", "X0210"]),
    ],
)
def test_prefix_filter_regex_matches_the_family(
    tables: MappingTables, row_id: str, matches: list[str], misses: list[str]
) -> None:
    row = next(r for r in tables.rows if r.id == row_id)
    regex = re.compile(prefix_regex(row))
    assert all(regex.fullmatch(code) for code in matches)
    assert not any(regex.fullmatch(code) for code in misses)


def test_fhir_code_puts_icd_dots_back(tables: MappingTables) -> None:
    row = next(r for r in tables.rows if r.id == "prior_cabg.icd9cm.V45.81")
    assert fhir_code(row) == "V45.81"
    assert fhir_code(replace(row, code="E8809")) == "E880.9"
    assert fhir_code(replace(row, resource="Procedure", code="3610")) == "36.10"
    assert fhir_code(replace(row, system=ICD10CM, code="I25810")) == "I25.810"
    assert fhir_code(replace(row, system=SNOMED, code="22298006")) == "22298006"


def test_export_leaves_out_disabled_rows(tmp_path: Path) -> None:
    merged = load_tables(site_dir(tmp_path, [f"prior_cabg.icd10cm.Z95.1,{Z951},patient,V,false,"]))
    cabg = next(vs for vs in value_sets(merged) if vs["id"] == "prior-cabg")
    assert _include_codes(cabg, ICD10CM) == {"I25.810"}
    cm = concept_map(merged)
    icd = next(g for g in cm["group"] if g["source"] == ICD10CM)
    assert "Z95.1" not in {e["code"] for e in icd["element"]}


def test_concept_map_validates_and_carries_meanings(tables: MappingTables) -> None:
    cm = concept_map(tables)
    ConceptMap.model_validate(cm)
    groups = {g["source"]: {e["code"]: e["target"] for e in g["element"]} for g in cm["group"]}
    assert len(cm["group"]) == len(groups)  # one group per source system
    targets = sum(len(t) for elements in groups.values() for t in elements.values())
    assert targets == len(tables.rows)
    severe = groups[SNOMED]["24484000"]
    assert {(t["code"], t["equivalence"]) for t in severe} == {
        ("calcification", "wider"),
        ("tortuosity", "wider"),
    }
    assert all(t["comment"].startswith("meaning=severe; element=Observation.value") for t in severe)
    [length] = groups[NCDR_QUESTIONS]["100013030"]
    assert (length["code"], length["equivalence"]) == ("occlusion_length_mm", "equivalent")
    assert "meaning=quantity:mm" in length["comment"]
    [failure] = groups[NCDR]["100-3"]
    assert failure["code"] == "outcome"
    assert "meaning=failure" in failure["comment"]
    [z951] = groups[ICD10CM]["Z95.1"]
    assert (z951["code"], z951["equivalence"]) == ("prior_cabg", "wider")
    [lad] = groups[SNOMED]["68787002"]
    assert "meaning=LAD" in lad["comment"]
    assert "element=bodySite of any resource" in lad["comment"]
    assert "match=prefix" in groups[ICD10PCS]["0270"][0]["comment"]


def test_validate_rejects_invalid_fhir(tables: MappingTables) -> None:
    vs = value_sets(tables)[0]
    validate(vs)
    with pytest.raises(ValidationError):
        validate({**vs, "id": "not_a_fhir_id"})
    with pytest.raises(ValueError, match="resourceType 'Patient'"):
        validate({"resourceType": "Patient"})


def test_site_local_system_renames_rows_and_exports(tmp_path: Path) -> None:
    site_system = "https://hospital.example/fhir/CodeSystem/cath-findings"
    merged = load_tables(site_dir(tmp_path, rules=f"local_system: {site_system}\n"))
    # codes.csv rows written with system `local` now match the site's system, not the shipped one.
    assert [r.id for r in merged.lookup("Observation", "code", site_system, "stump")] == [
        "stump.local.stump"
    ]
    assert merged.lookup("Observation", "code", LOCAL, "stump") == []
    assert not any(row.system == LOCAL for row in merged.rows)
    assert {vs["url"].rsplit("/ValueSet/", 1)[0] for vs in value_sets(merged)} == {
        "https://hospital.example/fhir"
    }
    cm = concept_map(merged)
    assert cm["url"] == "https://hospital.example/fhir/ConceptMap/cto-cds-inputs"
    assert site_system in {group["source"] for group in cm["group"]}
    validate(cm)


def test_lookup_memo_answers_the_same_and_cannot_be_changed_by_callers() -> None:
    fresh = load_tables()
    first = fresh.lookup("ServiceRequest", "code", "http://www.ama-assn.org/go/cpt", "92943")
    assert first  # the CTO-PCI code
    first.clear()  # a caller changing its list changes nothing for the next one
    again = fresh.lookup("ServiceRequest", "code", "http://www.ama-assn.org/go/cpt", "92943")
    assert again == load_tables().lookup(
        "ServiceRequest", "code", "http://www.ama-assn.org/go/cpt", "92943"
    )
    assert again
    # A copy made with dataclasses.replace starts with its own memo, never the original's.
    assert replace(fresh, rows=())._memo == {}


def test_lookup_memo_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import cds.mapping.tables as tables_module

    monkeypatch.setattr(tables_module, "LOOKUP_MEMO", 3)
    fresh = load_tables()
    for code in ["1", "2", "3", "4", "5"]:
        fresh.lookup("Condition", "code", "http://snomed.info/sct", code)
    assert len(fresh._memo) <= 3
