"""Code constants and FHIR R4 resource builders (plain JSON dicts) for the synthetic cohort.

Builders emit only what a real EHR would send for the purpose at hand; every resource validates against
the R4(B) models (tests/unit/test_cohort.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Resource = dict[str, Any]
Value = tuple[str, Any]
"""An Observation value: (`value[x]` element name, JSON value)."""

# Code-system URIs: terminology.md §2.
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD10CM_OID = "urn:oid:2.16.840.1.113883.6.90"  # terminology.md §2: OIDs are accepted spellings
ICD9CM = "http://hl7.org/fhir/sid/icd-9-cm"
ICD10PCS = "http://www.cms.gov/Medicare/Coding/ICD10"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
LOINC = "http://loinc.org"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
UCUM = "http://unitsofmeasure.org"
NPI = "http://hl7.org/fhir/sid/us-npi"
NCDR_Q = "http://hl7.org/fhir/us/registry-protocols/CodeSystem/NCDRQuestionCodesCS"
LOCAL = "http://cto-cds.org/fhir/CodeSystem/cto-lesion"  # terminology.md §4.10 local CodeSystem
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
COND_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
COND_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
COND_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"

# Procedure.outcome (terminology.md §5.2).
SUCCESSFUL = "385669000"
PARTIAL = "385670004"
UNSUCCESSFUL = "385671000"
OUTCOME_DISPLAY = {
    SUCCESSFUL: "Successful",
    PARTIAL: "Partially successful",
    UNSUCCESSFUL: "Unsuccessful",
}

# CTO-PCI (terminology.md §5.1); CPT text paraphrased (§6.4: descriptors are AMA-owned).
CTO_PCI_CPT = "92943"
CTO_PCI_DISPLAY = "CTO PCI, single vessel (paraphrase)"

# DICOM CID 3716 severity values (terminology.md §4.4, §4.5).
SEVERITY = {
    "none": ("260413007", "None"),
    "mild": ("255604002", "Mild"),
    "moderate": ("6736007", "Moderate"),
    "severe": ("24484000", "Severe"),
}


@dataclass(frozen=True)
class Site:
    """A coronary body site (terminology.md §4.2): SNOMED code and its canonical vessel group."""

    code: str
    display: str
    group: str  # inputs.md `target_vessel`


LAD = Site("59438005", "Left anterior descending coronary artery", "LAD")
PROX_LAD = Site("68787002", "Proximal left anterior descending coronary artery", "LAD")
MID_LAD = Site("91748002", "Mid left anterior descending coronary artery", "LAD")
DIST_LAD = Site("36672000", "Distal left anterior descending coronary artery", "LAD")
LCX = Site("57396003", "Circumflex coronary artery", "LCX")
PROX_LCX = Site("52433000", "Proximal circumflex coronary artery", "LCX")
MID_LCX = Site("91753007", "Mid circumflex coronary artery", "LCX")
OM1 = Site("91754001", "First marginal coronary artery", "LCX")
RCA = Site("13647002", "Right coronary artery", "RCA")
PROX_RCA = Site("91083009", "Proximal right coronary artery", "RCA")
MID_RCA = Site("450960006", "Mid right coronary artery", "RCA")
DIST_RCA = Site("41879009", "Distal right coronary artery", "RCA")
RCA_OSTIUM = Site("56789007", "Right coronary artery ostium", "RCA")  # §4.9 ostial site
RAMUS = Site("244252004", "Intermediate coronary artery (ramus)", "RAMUS")
SITES = (
    *(LAD, PROX_LAD, MID_LAD, DIST_LAD, LCX, PROX_LCX, MID_LCX, OM1),
    *(RCA, PROX_RCA, MID_RCA, DIST_RCA, RCA_OSTIUM, RAMUS),
)


def coding(system: str, code: str, display: str | None = None) -> Resource:
    out: Resource = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def concept(system: str, code: str, display: str | None = None) -> Resource:
    return {"coding": [coding(system, code, display)]}


def ref(resource_type: str, rid: str) -> Resource:
    return {"reference": f"{resource_type}/{rid}"}


def site_concept(site: Site) -> Resource:
    return concept(SNOMED, site.code, site.display)


# Observation values.
def boolean(value: bool) -> Value:
    return ("valueBoolean", value)


def integer(value: int) -> Value:
    return ("valueInteger", value)


def mm(value: float) -> Value:
    return ("valueQuantity", {"value": value, "unit": "mm", "system": UCUM, "code": "mm"})


def local_value(code: str) -> Value:
    return ("valueCodeableConcept", concept(LOCAL, code))


def severity(grade: str) -> Value:
    code, display = SEVERITY[grade]
    return ("valueCodeableConcept", concept(SNOMED, code, display))


def patient(
    pid: str, gender: str, born: str | None, family: str | None, given: str | None
) -> Resource:
    out: Resource = {"resourceType": "Patient", "id": pid}
    if family and given:
        out["name"] = [{"family": family, "given": [given]}]
    out["gender"] = gender
    if born:
        out["birthDate"] = born
    return out


def practitioner(pid: str, npi: str, family: str, given: str) -> Resource:
    return {
        "resourceType": "Practitioner",
        "id": pid,
        "identifier": [{"system": NPI, "value": npi}],
        "active": True,
        "name": [{"family": family, "given": [given], "prefix": ["Dr."]}],
    }


def npi(base9: str) -> str:
    """A 10-digit NPI with its Luhn check digit (computed over the prefix 80840 + 9 digits)."""
    digits = [int(c) for c in "80840" + base9]
    total = 0
    for i, d in enumerate(reversed(digits)):
        total += sum(divmod(d * 2, 10)) if i % 2 == 0 else d
    return base9 + str((10 - total % 10) % 10)


def encounter(eid: str, pid: str, start: str) -> Resource:
    return {
        "resourceType": "Encounter",
        "id": eid,
        "status": "in-progress",
        "class": coding(ACT_CODE, "IMP", "inpatient encounter"),
        "subject": ref("Patient", pid),
        "period": {"start": start},
    }


def condition(
    cid: str,
    pid: str,
    code: Resource,
    *,
    on: str,
    onset: bool = True,
    verification: str = "confirmed",
    clinical: str = "active",
    encounter_id: str | None = None,
) -> Resource:
    """`onset=False` records only `recordedDate` (status codes such as Z95.1 have no onset)."""
    out: Resource = {"resourceType": "Condition", "id": cid}
    # con-5: no clinicalStatus on an entered-in-error Condition.
    if verification != "entered-in-error":
        out["clinicalStatus"] = concept(COND_CLINICAL, clinical)
    out["verificationStatus"] = concept(COND_VERIFICATION, verification)
    out["category"] = [concept(COND_CATEGORY, "problem-list-item")]
    out["code"] = {"coding": [code]}
    out["subject"] = ref("Patient", pid)
    if encounter_id:
        out["encounter"] = ref("Encounter", encounter_id)
    if onset:
        out["onsetDateTime"] = on
    out["recordedDate"] = on
    return out


def procedure(
    prid: str,
    pid: str,
    code: Resource,
    *,
    performed: str,
    status: str = "completed",
    sites: Sequence[Site] = (),
    performer: str | None = None,
    outcome: str | None = None,
) -> Resource:
    out: Resource = {
        "resourceType": "Procedure",
        "id": prid,
        "status": status,
        "code": {"coding": [code]},
        "subject": ref("Patient", pid),
        "performedDateTime": performed,
    }
    if performer:
        out["performer"] = [{"actor": ref("Practitioner", performer)}]
    if outcome:
        out["outcome"] = concept(SNOMED, outcome, OUTCOME_DISPLAY[outcome])
    if sites:
        out["bodySite"] = [site_concept(s) for s in sites]
    return out


def observation(
    oid: str,
    pid: str,
    code: Resource,
    value: Value,
    *,
    on: str,
    site: Site | None,
    status: str = "final",
) -> Resource:
    """A lesion-level finding (terminology.md §4.10: one Observation per feature, bodySite = segment)."""
    out: Resource = {
        "resourceType": "Observation",
        "id": oid,
        "status": status,
        "category": [concept(OBS_CATEGORY, "imaging", "Imaging")],
        "code": {"coding": [code]},
        "subject": ref("Patient", pid),
        "effectiveDateTime": on,
    }
    element, json_value = value
    out[element] = json_value
    if site:
        out["bodySite"] = site_concept(site)
    return out


def operator_override(
    oid: str, practitioner_id: str, code: str, value: Value, on: str, *, status: str = "final"
) -> Resource:
    """Site-entered operator experience (terminology.md §5.3): `focus` = Practitioner, no subject
    (R4 Observation.subject cannot reference a Practitioner)."""
    out: Resource = {
        "resourceType": "Observation",
        "id": oid,
        "status": status,
        "code": concept(LOCAL, code),
        "focus": [ref("Practitioner", practitioner_id)],
        "effectiveDateTime": on,
    }
    element, json_value = value
    out[element] = json_value
    return out


def quantity(value: float, unit: str) -> Value:
    return ("valueQuantity", {"value": value, "unit": unit, "system": UCUM, "code": unit})


def cath_report(rid: str, pid: str, results: Sequence[str], on: str) -> Resource:
    """Findings grouped under LOINC 18745-0 Cardiac catheterization study (terminology.md §4.10)."""
    return {
        "resourceType": "DiagnosticReport",
        "id": rid,
        "status": "final",
        "category": [concept(V2_0074, "CTH", "Cardiac Catheterization")],
        "code": concept(LOINC, "18745-0", "Cardiac catheterization study"),
        "subject": ref("Patient", pid),
        "effectiveDateTime": on,
        "issued": f"{on}T16:00:00Z",
        "result": [ref("Observation", oid) for oid in results],
    }


def cto_order(
    sid: str, pid: str, operator: str, authored: str, site: Site, encounter_id: str | None
) -> Resource:
    """The CTO-PCI order the hook fires on: CPT 92943, target vessel in bodySite (§4.2, §5.1)."""
    out: Resource = {
        "resourceType": "ServiceRequest",
        "id": sid,
        "status": "active",
        "intent": "order",
        "code": concept(CPT, CTO_PCI_CPT, CTO_PCI_DISPLAY),
        "subject": ref("Patient", pid),
    }
    if encounter_id:
        out["encounter"] = ref("Encounter", encounter_id)
    out["authoredOn"] = authored
    out["performer"] = [ref("Practitioner", operator)]
    out["reasonCode"] = [concept(ICD10CM, "I25.82", "Chronic total occlusion of coronary artery")]
    out["bodySite"] = [site_concept(site)]
    return out
