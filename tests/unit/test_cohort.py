"""The synthetic cohort: shipped files current, valid R4, self-contained, and covering every mapping path.

Coverage is asserted from the generated resources, not from the generator's intentions: each path names
the patients whose record shows it, and none may be empty.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class  # the package default is R5

import cds
from cds.demo import cohort as cohort_module
from cds.demo import fhir_build as fb
from cds.demo.case import INPUT_NAMES, LOCAL_CODE
from cds.demo.cohort_operators import EXPECTED, EXPECTED_BY_DATE, OPERATORS
from cds.demo.fhir_server import SEKMET_VERSION

DEMO = Path(cohort_module.__file__).parent
Resource = dict[str, Any]
GROUP = {s.code: s.group for s in fb.SITES}
# terminology.md §3.1, §3.2, §3.4, §5.1 (as used by the cohort).
CABG = {"33510", "33533", "33534", "232717009", "021009W", "Z95.1", "V45.81"}
MI = {"I25.2", "I252", "412", "22298006", "I21.4", "I21.09", "I21.9"}
PCI = {"92928", "36969009", "02703DZ", "Z95.5", "Z9861", "V45.82", "C9600", "92943"}


@cache
def cohort() -> cohort_module.Cohort:
    return cohort_module.build_cohort()


@cache
def expected() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(cohort_module.render_expected(cohort()))
    return doc


def by_patient() -> dict[str, list[Resource]]:
    out: dict[str, list[Resource]] = {}
    for r in cohort().resources:
        subject = (
            r["id"] if r["resourceType"] == "Patient" else r.get("subject", {}).get("reference", "")
        )
        out.setdefault(subject.removeprefix("Patient/"), []).append(r)
    return out


def codes(r: Resource) -> set[tuple[str, str]]:
    return {(c["system"], c["code"]) for c in r.get("code", {}).get("coding", [])}


def sites(r: Resource) -> set[str]:
    body = r.get("bodySite", [])
    concepts = body if isinstance(body, list) else [body]
    return {GROUP[c["code"]] for concept in concepts for c in concept["coding"]}


def valid(r: Resource) -> bool:
    ver = r.get("verificationStatus", {}).get("coding", [{}])[0].get("code")
    return r.get("status", "final") in ("final", "completed", "active") and ver in (
        None,
        "confirmed",
    )


def has_code(r: Resource, wanted: set[str]) -> bool:
    return any(code in wanted for _, code in codes(r))


def days(r: Resource, order: Resource) -> int:
    when = r.get("performedDateTime") or r.get("onsetDateTime") or r["recordedDate"]
    return (date.fromisoformat(order["authoredOn"]) - date.fromisoformat(when[:10])).days


class Record:
    """One index patient as the tests see it: resources, order, target group, expected inputs."""

    def __init__(self, resources: list[Resource], expect: dict[str, Any]) -> None:
        self.all = resources
        self.order = next(r for r in resources if r["resourceType"] == "ServiceRequest")
        self.target = sites(self.order).pop()
        self.exp = {k: v["value"] for k, v in expect["inputs"].items()}

    def of(self, rtype: str) -> list[Resource]:
        return [r for r in self.all if r["resourceType"] == rtype]

    def history(self, wanted: set[str]) -> list[Resource]:
        return [r for r in self.of("Condition") + self.of("Procedure") if has_code(r, wanted)]

    def findings(self, code: str, *, target: bool = True) -> list[Resource]:
        return [
            o
            for o in self.of("Observation")
            if any(c == code for _, c in codes(o))
            and valid(o)
            and (self.target in sites(o)) == target
        ]


def records() -> dict[str, Record]:
    grouped = by_patient()
    return {p["patient"]: Record(grouped[p["patient"]], p) for p in expected()["patients"]}


def _system(system: str, dotted: bool | None = None) -> Callable[[Record], bool]:
    def check(rec: Record) -> bool:
        return any(
            s == system and (dotted is None or ("." in c) == dotted)
            for r in rec.history(CABG | MI | PCI)
            for s, c in codes(r)
        )

    return check


def _cabg(rec: Record, *, vessels: bool, to_target: bool, old: bool) -> bool:
    return any(
        valid(r)
        and bool(sites(r)) == vessels
        and (rec.target in sites(r)) == to_target
        and (days(r, rec.order) >= 90) == old
        for r in rec.history(CABG)
    )


def _cto(rec: Record, *, same_vessel: bool) -> bool:
    return any(
        r["resourceType"] == "Procedure"
        and has_code(r, {"92943"})
        and r["outcome"]["coding"][0]["code"] == fb.UNSUCCESSFUL
        and (rec.target in sites(r)) == same_vessel
        for r in rec.history(PCI)
    )


def _value(code: str, value: str) -> Callable[[Record], bool]:
    return lambda rec: any(
        value in json.dumps(o.get("valueCodeableConcept")) for o in rec.findings(code)
    )


def _status(rtype: str, status: str) -> Callable[[Record], bool]:
    return lambda rec: any(
        status
        in (r.get("status"), r.get("verificationStatus", {}).get("coding", [{}])[0].get("code"))
        for r in rec.of(rtype)
    )


def _found(code: str) -> Callable[[Record], bool]:
    return lambda rec: bool(rec.findings(code))


def _expects(name: str, value: object) -> Callable[[Record], bool]:
    return lambda rec: bool(rec.exp[name] == value)


def _operated_by(pid: str) -> Callable[[Record], bool]:
    return lambda rec: bool(rec.order["performer"][0]["reference"] == f"Practitioner/{pid}")


COVERAGE: dict[str, Callable[[Record], bool]] = {
    "history ICD-10-CM with dots": _system(fb.ICD10CM, dotted=True),
    "history ICD-10-CM without dots": _system(fb.ICD10CM, dotted=False),
    "history ICD-9-CM": _system(fb.ICD9CM),
    "history CPT": _system(fb.CPT),
    "history ICD-10-PCS": _system(fb.ICD10PCS),
    "history SNOMED": _system(fb.SNOMED),
    "history HCPCS": _system(fb.HCPCS),
    "history OID urn:oid:2.16.840.1.113883.6.90": _system(fb.ICD10CM_OID),
    "CABG grafted target ≥ 90 d → true": lambda r: (
        _cabg(r, vessels=True, to_target=True, old=True)
        and r.exp["prior_cabg_target_vessel"] is True
    ),
    "CABG grafted other vessels → false": lambda r: (
        _cabg(r, vessels=True, to_target=False, old=True)
        and r.exp["prior_cabg_target_vessel"] is False
    ),
    "CABG to target < 90 d → false": lambda r: (
        _cabg(r, vessels=True, to_target=True, old=False)
        and r.exp["prior_cabg_target_vessel"] is False
    ),
    "CABG without vessels → unknown": lambda r: (
        _cabg(r, vessels=False, to_target=False, old=True)
        and r.exp["prior_cabg_target_vessel"] is None
    ),
    "CABG without vessels + prior-cabg-target-vessel finding": lambda r: bool(
        r.findings("prior-cabg-target-vessel")
    ),
    "prior MI → true": lambda r: r.exp["prior_mi"] is True,
    "MI during the index stay → not prior": lambda r: (
        r.exp["prior_mi"] is False
        and "encounter" in r.order
        and any(c.get("encounter") == r.order["encounter"] for c in r.history(MI))
    ),
    "stent/PCI, no finding → ISO unknown": lambda r: (
        bool(r.history(PCI)) and r.exp["in_stent_occlusion"] is None
    ),
    "no PCI ever → ISO false": lambda r: (
        not r.history(PCI) and r.exp["in_stent_occlusion"] is False
    ),
    "in-stent-occlusion finding true": lambda r: (
        bool(r.findings("in-stent-occlusion")) and r.exp["in_stent_occlusion"] is True
    ),
    "in-stent-occlusion finding false": lambda r: (
        bool(r.findings("in-stent-occlusion")) and r.exp["in_stent_occlusion"] is False
    ),
    "failed CTO-PCI same vessel → retry": lambda r: (
        _cto(r, same_vessel=True) and r.exp["retry_lesion"] is True
    ),
    "failed CTO-PCI other vessel → no retry": lambda r: (
        _cto(r, same_vessel=False) and r.exp["retry_lesion"] is False
    ),
    **{f"local {code}": _found(code) for code in LOCAL_CODE.values()},
    **{f"stump {v}": _value("stump", v) for v in ("tapered", "blunt", "no-stump")},
    **{f"calcification-grade {v}": _value("calcification-grade", f'"{v}"') for v in fb.SEVERITY},
    **{
        f"tortuosity {v}": _value("tortuosity-grade", f'"{fb.SEVERITY[v][0]}"') for v in fb.SEVERITY
    },
    "tortuosity unseen": _value("tortuosity-grade", '"unseen"'),
    "DCM 122132 Severity of Calcification": lambda r: bool(r.findings("122132")),
    "NCDR 100013030 Lesion Length": lambda r: bool(r.findings("100013030")),
    "NCDR 1000142350 Severe Calcification": lambda r: bool(r.findings("1000142350")),
    "findings in a DiagnosticReport 18745-0": lambda r: any(
        (fb.LOINC, "18745-0") in codes(d) for d in r.of("DiagnosticReport")
    ),
    "two occlusion lengths on different dates": lambda r: (
        len({o["effectiveDateTime"] for o in r.findings("occlusion-length")}) > 1
    ),
    "entered-in-error Observation": _status("Observation", "entered-in-error"),
    "entered-in-error Condition": _status("Condition", "entered-in-error"),
    "refuted Condition": _status("Condition", "refuted"),
    "entered-in-error Procedure": _status("Procedure", "entered-in-error"),
    "almost nothing recorded": lambda r: len(r.all) == 2,
    "findings on another vessel only (unused)": lambda r: (
        any(r.exp[n] is None for n in ("stump", "calcification"))
        and bool([o for o in r.of("Observation") if r.target not in sites(o)])
    ),
    "ostial site on the order": lambda r: (
        r.order["bodySite"][0]["coding"][0]["code"] == fb.RCA_OSTIUM.code
    ),
    **{f"sex {s}": _expects("sex", s) for s in ("female", "male")},
    **{f"age {a}": _expects("age_years", a) for a in (65, 66, 69, 70, 74, 75)},
    **{f"operator {o.pid}": _operated_by(o.pid) for o in OPERATORS if o.pid != "op-outside"},
}


@cache
def coverage_table() -> dict[str, list[str]]:
    recs = records()
    return {
        path: [pid for pid, rec in recs.items() if check(rec)] for path, check in COVERAGE.items()
    }


def test_shipped_files_equal_generator_output() -> None:
    shipped_ndjson = (DEMO / cohort_module.NDJSON).read_text(encoding="utf-8")
    shipped_expected = (DEMO / cohort_module.EXPECTED_JSON).read_text(encoding="utf-8")
    hint = "regenerate: .venv/bin/python -m cds.demo.cohort --out cds/demo"
    assert shipped_ndjson == cohort_module.render_ndjson(cohort()), hint
    assert shipped_expected == cohort_module.render_expected(cohort()), hint


def test_ids_unique_and_references_resolve() -> None:
    keys = [f"{r['resourceType']}/{r['id']}" for r in cohort().resources]
    assert len(keys) == len(set(keys))
    known = set(keys)

    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            own = [node["reference"]] if isinstance(node.get("reference"), str) else []
            return own + [x for v in node.values() for x in refs(v)]
        if isinstance(node, list):
            return [x for v in node for x in refs(v)]
        return []

    dangling = {ref for r in cohort().resources for ref in refs(r) if ref not in known}
    assert not dangling


def test_every_resource_validates_as_r4() -> None:
    for r in cohort().resources:
        get_fhir_model_class(r["resourceType"]).model_validate(r)


def test_index_patients_and_orders() -> None:
    patients = expected()["patients"]
    assert len(patients) >= 30
    orders = {r["id"]: r for r in cohort().resources if r["resourceType"] == "ServiceRequest"}
    assert len(orders) == len(patients)
    for p in patients:
        order = orders[p["order"]]
        assert (order["status"], order["intent"]) == ("active", "order")
        assert order["code"]["coding"][0] == {
            "system": fb.CPT,
            "code": "92943",
            "display": fb.CTO_PCI_DISPLAY,
        }
        assert order["subject"]["reference"] == f"Patient/{p['patient']}"
        assert order["performer"] == [{"reference": f"Practitioner/{p['operator']}"}]
        assert order["authoredOn"] == p["index_date"]
        assert "2026-09-01" <= p["index_date"] <= "2026-11-20"
        assert order["bodySite"][0]["coding"][0]["system"] == fb.SNOMED
        assert list(p["inputs"]) == list(INPUT_NAMES)


def test_expected_inputs_are_valid_canonical_inputs() -> None:
    assert sorted(INPUT_NAMES) == sorted(spec.name for spec in cds.INPUTS)
    for p in expected()["patients"]:
        cds.parse_inputs({k: v["value"] for k, v in p["inputs"].items()})
        assert all(v["reason"] for v in p["inputs"].values())


def test_operators_have_npis() -> None:
    practitioners = [r for r in cohort().resources if r["resourceType"] == "Practitioner"]
    assert len(practitioners) >= 6
    for r in practitioners:
        (ident,) = r["identifier"]
        assert ident["system"] == fb.NPI
        assert len(ident["value"]) == 10
        assert ident["value"].isdigit()
    assert fb.npi("123456789") == "1234567893"  # CMS's published example NPI


@pytest.mark.parametrize(
    ("operator", "index_date"),
    [
        *[(op, "2026-09-01") for op in EXPECTED],
        *[(op, "2026-11-20") for op in EXPECTED],
        *EXPECTED_BY_DATE,
    ],
)
def test_operator_design_adds_up(operator: str, index_date: str) -> None:
    """Cross-check the hand-written operator expectations against the generated history."""
    exp = EXPECTED_BY_DATE.get((operator, index_date)) or EXPECTED[operator]
    volume, years, rate = (exp[k][0] for k in [*INPUT_NAMES][-3:])
    order = date.fromisoformat(index_date)
    ctos = [
        r
        for r in cohort().resources
        if r["resourceType"] == "Procedure"
        and r["status"] == "completed"
        and has_code(r, {"92943", "C9607"})
        and r.get("performer", [{}])[0].get("actor", {}).get("reference")
        == f"Practitioner/{operator}"
    ]
    if not ctos:
        return
    first = min(date.fromisoformat(r["performedDateTime"]) for r in ctos)
    months = (order.year - first.year) * 12 + order.month - first.month - (order.day < first.day)
    whole, rest = divmod(months, 12)  # complete years and months; days beyond them below
    assert years == whole + (rest > 6 or (rest == 6 and order.day != first.day))
    assert volume == len(ctos) / years
    last = [r for r in ctos if 0 < (order - date.fromisoformat(r["performedDateTime"])).days <= 365]
    ok = [r for r in last if r["outcome"]["coding"][0]["code"] == fb.SUCCESSFUL]
    assert rate == pytest.approx(len(ok) / len(last))


@pytest.mark.parametrize("path", list(COVERAGE))
def test_coverage(path: str) -> None:
    assert coverage_table()[path], f"no patient covers {path!r}"


def test_bootstrap_installs_the_pinned_sekmet() -> None:
    bootstrap = (Path(cds.__file__).parents[1] / "scripts" / "bootstrap").read_text()
    assert f"sekmet_version={SEKMET_VERSION}\n" in bootstrap
