"""The few FHIR JSON building blocks the demo's EHR client needs to draft a CTO-PCI order.

The test cohort's builders (`tests/fixtures/fhir_build.py`) extend these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cds.mapping.codes import CPT, ICD10CM, SNOMED

Resource = dict[str, Any]

# CTO-PCI (docs/spec/terminology.md §5.1); CPT text paraphrased (descriptors are AMA-owned).
CTO_PCI_CPT = "92943"
CTO_PCI_DISPLAY = "CTO PCI, single vessel (paraphrase)"

__all__ = [
    "CPT",
    "CTO_PCI_CPT",
    "CTO_PCI_DISPLAY",
    "ICD10CM",
    "RCA",
    "SNOMED",
    "Resource",
    "Site",
    "coding",
    "concept",
    "ref",
]


@dataclass(frozen=True)
class Site:
    """A coronary body site (docs/spec/terminology.md §4.2): SNOMED code and its vessel group."""

    code: str
    display: str
    group: str  # the `target_vessel` input


RCA = Site("13647002", "Right coronary artery", "RCA")


def coding(system: str, code: str, display: str | None = None) -> Resource:
    out: Resource = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def concept(system: str, code: str, display: str | None = None) -> Resource:
    return {"coding": [coding(system, code, display)]}


def ref(resource_type: str, rid: str) -> Resource:
    return {"reference": f"{resource_type}/{rid}"}
