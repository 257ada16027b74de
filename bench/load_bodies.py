"""Hook request bodies for bench/load.py, built from the shipped synthetic cohort.

`full_prefetch(patient)` is what an EHR honouring every prefetch template sends (hooks/): the cohort
patient's own resources, topped up with unrelated findings (codes no mapping table knows: asthma,
colonoscopy, vital signs, ...) to a realistic record of ~20 Conditions, 15 Procedures and 40
Observations (≈ 87 KB with the request around it). The filler changes no score: the mapping ignores
codes it does not know, as it would in a real chart.
"""

from __future__ import annotations

import copy
from typing import Any

from cds.demo.cohort_data import COHORT_NDJSON, load_ndjson
from cds.demo.ehr import hook_request
from cds.sources.searches import patient_searches

Resource = dict[str, Any]
TARGETS = {"conditions": 20, "procedures": 15, "observations": 40}
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
LOINC = "http://loinc.org"
# Findings that no table in mappings/ maps (checked by bench/load.py at start-up).
CONDITIONS = [
    ("J45.909", "Unspecified asthma, uncomplicated"),
    ("K21.9", "Gastro-esophageal reflux disease without esophagitis"),
    ("M54.50", "Low back pain, unspecified"),
    ("K57.30", "Diverticulosis of large intestine without perforation or abscess"),
    ("M17.11", "Unilateral primary osteoarthritis, right knee"),
    ("N40.0", "Benign prostatic hyperplasia without lower urinary tract symptoms"),
    ("G47.33", "Obstructive sleep apnea (adult) (pediatric)"),
    ("J30.9", "Allergic rhinitis, unspecified"),
    ("H25.9", "Unspecified age-related cataract"),
    ("E03.9", "Hypothyroidism, unspecified"),
]
PROCEDURES = [
    ("45378", "Colonoscopy, flexible; diagnostic"),
    ("66984", "Extracapsular cataract removal with insertion of intraocular lens prosthesis"),
    ("29881", "Arthroscopy, knee, surgical; with meniscectomy"),
    ("43239", "Esophagogastroduodenoscopy, flexible, transoral; with biopsy"),
    ("71046", "Radiologic examination, chest; 2 views"),
    ("47562", "Laparoscopy, surgical; cholecystectomy"),
]
OBSERVATIONS = [
    ("8867-4", "Heart rate", 72, "/min"),
    ("8480-6", "Systolic blood pressure", 134, "mm[Hg]"),
    ("8462-4", "Diastolic blood pressure", 82, "mm[Hg]"),
    ("29463-7", "Body weight", 84.2, "kg"),
    ("2951-2", "Sodium [Moles/volume] in Serum or Plasma", 139, "mmol/L"),
    ("2823-3", "Potassium [Moles/volume] in Serum or Plasma", 4.2, "mmol/L"),
    ("718-7", "Hemoglobin [Mass/volume] in Blood", 13.9, "g/dL"),
    ("777-3", "Platelets [#/volume] in Blood by Automated count", 231, "10*3/uL"),
    ("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", 171, "mg/dL"),
    ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", 97, "%"),
]
FILLER_CODES = {code for code, *_ in CONDITIONS + PROCEDURES + OBSERVATIONS}


def _filler(kind: str, patient: str, n: int) -> Resource:
    subject = {"reference": f"Patient/{patient}"}
    day = f"20{18 + n % 7}-{1 + n % 12:02d}-{1 + n % 27:02d}"
    meta = {"versionId": "1", "lastUpdated": f"{day}T09:30:00Z", "source": "#ehr-bench"}
    ident = [{"system": "urn:oid:1.2.840.114350.1.13.0.1.7.2.798268", "value": f"{kind}-{n:06d}"}]
    if kind == "Condition":
        code, text = CONDITIONS[n % len(CONDITIONS)]
        return _narrated(
            {
                "resourceType": "Condition",
                "id": f"bench-cond-{n}",
                "meta": meta,
                "identifier": ident,
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                            "code": "active",
                        }
                    ]
                },
                "verificationStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                            "code": "confirmed",
                        }
                    ]
                },
                "category": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                "code": "problem-list-item",
                                "display": "Problem List Item",
                            }
                        ]
                    }
                ],
                "code": {
                    "coding": [{"system": ICD10, "code": code, "display": text}],
                    "text": text,
                },
                "subject": subject,
                "onsetDateTime": day,
                "recordedDate": day,
                "note": [
                    {"text": f"{text}; followed by primary care, stable on current management."}
                ],
            }
        )
    if kind == "Procedure":
        code, text = PROCEDURES[n % len(PROCEDURES)]
        return _narrated(
            {
                "resourceType": "Procedure",
                "id": f"bench-proc-{n}",
                "meta": meta,
                "identifier": ident,
                "status": "completed",
                "code": {"coding": [{"system": CPT, "code": code, "display": text}], "text": text},
                "subject": subject,
                "performedDateTime": day,
                "location": {"display": "Ambulatory surgery centre"},
                "outcome": {"text": "Uneventful"},
                "note": [{"text": f"{text}: no complications, discharged the same day."}],
            }
        )
    code, text, value, unit = OBSERVATIONS[n % len(OBSERVATIONS)]
    return _narrated(
        {
            "resourceType": "Observation",
            "id": f"bench-obs-{n}",
            "meta": meta,
            "identifier": ident,
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "vital-signs" if n % 2 else "laboratory",
                        }
                    ]
                }
            ],
            "code": {"coding": [{"system": LOINC, "code": code, "display": text}], "text": text},
            "subject": subject,
            "effectiveDateTime": f"{day}T08:{n % 60:02d}:00Z",
            "issued": f"{day}T10:00:00Z",
            "valueQuantity": {
                "value": value,
                "unit": unit,
                "system": "http://unitsofmeasure.org",
                "code": unit,
            },
        }
    )


def _narrated(resource: Resource) -> Resource:
    """Add the generated narrative EHRs send (text.div): a good part of a real resource's size."""
    text = resource["code"]["text"]
    when = (
        resource.get("onsetDateTime")
        or resource.get("performedDateTime")
        or resource.get("effectiveDateTime")
    )
    resource["text"] = {
        "status": "generated",
        "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><p><b>{resource["resourceType"]}</b> '
        f"{text}</p><p>Recorded {when} by the ambulatory clinic; reviewed at the last visit.</p></div>",
    }
    return resource


_KIND = {"conditions": "Condition", "procedures": "Procedure", "observations": "Observation"}


def full_prefetch(patient: str, cohort: list[Resource]) -> dict[str, Any]:
    """Every prefetch key for `patient` (reads and searchset Bundles), topped up to TARGETS."""
    out: dict[str, Any] = {}
    mine = [r for r in cohort if (r.get("subject") or {}).get("reference") == f"Patient/{patient}"]
    for search in patient_searches(patient):
        if "?" not in search.path:
            out[search.key] = next(
                r for r in cohort if f"{r['resourceType']}/{r['id']}" == search.path
            )
            continue
        found = [r for r in mine if r["resourceType"] == search.resource_type]
        for n in range(len(found), TARGETS.get(search.key, 0)):
            found.append(_filler(_KIND[search.key], patient, n))
        out[search.key] = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(found),
            "entry": [
                {
                    "fullUrl": f"urn:bench:{r['resourceType']}/{r['id']}",
                    "resource": r,
                    "search": {"mode": "match"},
                }
                for r in found
            ],
        }
    return out


def cto_order(patient: str, cohort: list[Resource]) -> Resource:
    """The patient's CTO-PCI order in the cohort (sent as a draft)."""
    return next(
        r
        for r in cohort
        if r["resourceType"] == "ServiceRequest"
        and r["subject"]["reference"] == f"Patient/{patient}"
    )


def non_cto_order(patient: str, cohort: list[Resource]) -> Resource:
    """The same order for a diagnostic catheterisation (CPT 93458): not a CTO-PCI, no card."""
    order = copy.deepcopy(cto_order(patient, cohort))
    order["id"] = "bench-diagnostic-cath"
    order["code"] = {
        "coding": [
            {
                "system": CPT,
                "code": "93458",
                "display": "Left heart catheterization with coronary angiography",
            }
        ],
        "text": "Diagnostic coronary angiography",
    }
    return order


def bodies(patient: str, fhir_server: str) -> dict[str, dict[str, Any]]:
    """`full` (a), `non_cto` (b) with the same prefetch, `no_prefetch` (c) reading `fhir_server`."""
    cohort = load_ndjson(COHORT_NDJSON)
    prefetch = full_prefetch(patient, cohort)
    order = cto_order(patient, cohort)
    full = hook_request(
        "order-select", order=order, patient_id=patient, fhir_server=None, prefetch=prefetch
    )
    other = non_cto_order(patient, cohort)
    non_cto = hook_request(
        "order-select", order=other, patient_id=patient, fhir_server=None, prefetch=prefetch
    )
    bare = hook_request(
        "order-select", order=order, patient_id=patient, fhir_server=fhir_server, prefetch=None
    )
    return {"full": full, "non_cto": non_cto, "no_prefetch": bare}
