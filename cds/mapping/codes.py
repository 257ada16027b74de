"""Code-system identity: one canonical URI per system, whatever spelling the EHR sends.

EHRs send OIDs (`urn:oid:2.16.840.1.113883.6.90`) or URIs, and ICD codes with or without the dot
(`Z95.1`, `Z951`). Matching is on normalised (system, code) pairs, never on display text.
"""

from __future__ import annotations

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD9CM = "http://hl7.org/fhir/sid/icd-9-cm"
ICD10PCS = "http://www.cms.gov/Medicare/Coding/ICD10"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
DICOM = "http://dicom.nema.org/resources/ontology/DCM"
NCDR = "http://hl7.org/fhir/us/registry-protocols/CodeSystem/ncdr"
NCDR_QUESTIONS = "http://hl7.org/fhir/us/registry-protocols/CodeSystem/NCDRQuestionCodesCS"
UCUM = "http://unitsofmeasure.org"
NPI = "http://hl7.org/fhir/sid/us-npi"

# docs/spec/terminology.md §2: OIDs and alternative spellings accepted for the same system.
ALIASES: dict[str, str] = {
    "urn:oid:2.16.840.1.113883.6.12": CPT,
    "urn:oid:2.16.840.1.113883.6.90": ICD10CM,
    "urn:oid:2.16.840.1.113883.6.103": ICD9CM,
    "urn:oid:2.16.840.1.113883.6.104": ICD9CM,  # ICD-9-CM procedures share the FHIR URI here
    "urn:oid:2.16.840.1.113883.6.4": ICD10PCS,
    "urn:oid:2.16.840.1.113883.6.96": SNOMED,
    "urn:oid:2.16.840.1.113883.6.1": LOINC,
    "urn:oid:2.16.840.1.113883.6.285": HCPCS,
    "urn:oid:1.2.840.10008.2.16.4": DICOM,
    "http://hl7.org/fhir/sid/icd-10-pcs": ICD10PCS,
    "http://www.cms.gov/medicare/coding/icd10": ICD10PCS,
    "http://snomed.info/sct/": SNOMED,
    # CREDS FHIRPath spells the NCDR base differently; accept both (terminology.md §2).
    "http://hl7.org/fhir/us/fhir-registry-protocols-ig/CodeSystem/ncdr": NCDR,
    "http://hl7.org/fhir/us/fhir-registry-protocols-ig/CodeSystem/NCDRQuestionCodesCS": (
        NCDR_QUESTIONS
    ),
}

_DOTLESS = {ICD10CM, ICD9CM}


def normalize_system(system: str) -> str:
    system = system.strip()
    return ALIASES.get(system, ALIASES.get(system.lower(), system))


def is_dotless(system: str) -> bool:
    """Whether codes of this (normalised) system are compared without dots (ICD-9/10-CM)."""
    return system in _DOTLESS


def normalize_code(system: str, code: str) -> str:
    """ICD codes compare without dots and in upper case; other codes as written."""
    code = code.strip()
    if system in _DOTLESS:
        return code.replace(".", "").upper()
    return code
