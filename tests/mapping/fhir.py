"""Small builders of FHIR R4 resource dicts for mapping tests."""

from __future__ import annotations

from typing import Any

from cds.mapping.tables import load_tables

LOCAL = load_tables().rules.local_system  # the shipped rules.yaml's local CodeSystem
SCT = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
LAD, RCA, LCX = "59438005", "13647002", "57396003"  # SNOMED vessel body sites (terminology §4.2)
CABG_SCT = "232717009"
SUCCESS, FAILURE = "385669000", "385671000"


def cc(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def patient(pid: str = "p1", birth: str = "1955-03-02", gender: str = "male") -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "birthDate": birth, "gender": gender}


def order(
    oid: str = "o1",
    pid: str = "p1",
    vessel: str | None = LAD,
    when: str = "2026-10-01",
    performer: str | None = "dr1",
) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": oid,
        "status": "active",
        "intent": "order",
        "code": cc(CPT, "92943"),
        "subject": {"reference": f"Patient/{pid}"},
        "authoredOn": when,
    }
    if vessel:
        res["bodySite"] = [cc(SCT, vessel)]
    if performer:
        res["performer"] = [{"reference": f"Practitioner/{performer}"}]
    return res


def condition(
    cid: str,
    system: str,
    code: str,
    onset: str | None = "2020-01-01",
    verification: str | None = None,
    pid: str = "p1",
) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "Condition",
        "id": cid,
        "code": cc(system, code),
        "subject": {"reference": f"Patient/{pid}"},
    }
    if onset:
        res["onsetDateTime"] = onset
    if verification:
        res["verificationStatus"] = cc(
            "http://terminology.hl7.org/CodeSystem/condition-ver-status", verification
        )
    return res


def procedure(
    prid: str,
    system: str,
    code: str,
    when: str | None = "2020-01-01",
    sites: list[str] | None = None,
    outcome: str | None = None,
    performer: str | None = None,
    status: str = "completed",
    pid: str = "p1",
) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "Procedure",
        "id": prid,
        "status": status,
        "code": cc(system, code),
        "subject": {"reference": f"Patient/{pid}"},
    }
    if when:
        res["performedDateTime"] = when
    if sites:
        res["bodySite"] = [cc(SCT, s) for s in sites]
    if outcome:
        res["outcome"] = cc(SCT, outcome)
    if performer:
        res["performer"] = [{"actor": {"reference": f"Practitioner/{performer}"}}]
    return res


def finding(
    fid: str,
    code: str,
    value: dict[str, Any],
    site: str | None = LAD,
    when: str = "2026-09-01",
    status: str = "final",
    system: str = LOCAL,
    pid: str = "p1",
) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "Observation",
        "id": fid,
        "status": status,
        "code": cc(system, code),
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": when,
        **value,
    }
    if site:
        res["bodySite"] = cc(SCT, site)
    return res
