"""The FHIR searches that make up a patient's record for scoring, planned in one place.

Every source answers the same `Search` list: the REST source sends them, the prefetch source looks
them up among the prefetched keys (hooks/ templates use the same keys), the file source evaluates them
in memory. Keys are stable names; paths are relative FHIR URLs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote

# FHIR id: 1–64 of [A-Za-z0-9-.] (http://hl7.org/fhir/R4/datatypes.html#id).
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")

PAGE_SIZE = 100


@dataclass(frozen=True)
class Search:
    """One read or search: `key` names what it is for, `path` is relative to the FHIR base."""

    key: str
    path: str
    resource_type: str


def valid_id(value: str) -> bool:
    return bool(_ID.fullmatch(value))


def _id(value: str, what: str) -> str:
    if not valid_id(value):
        raise ValueError(f"{what} {value!r} is not a FHIR id")
    return quote(value, safe="")


def patient_searches(patient_id: str) -> list[Search]:
    """Searches for the patient's own record: demographics, history, findings, orders."""
    pid = _id(patient_id, "patient id")
    return [
        Search("patient", f"Patient/{pid}", "Patient"),
        Search("conditions", f"Condition?patient={pid}&_count={PAGE_SIZE}", "Condition"),
        Search("procedures", f"Procedure?patient={pid}&_count={PAGE_SIZE}", "Procedure"),
        Search("observations", f"Observation?patient={pid}&_count={PAGE_SIZE}", "Observation"),
        Search("reports", f"DiagnosticReport?patient={pid}&_count={PAGE_SIZE}", "DiagnosticReport"),
        Search("orders", f"ServiceRequest?patient={pid}&_count={PAGE_SIZE}", "ServiceRequest"),
    ]


def operator_searches(practitioner_id: str) -> list[Search]:
    """Searches for the operator: identity, CTO-PCI history as performer, override Observations."""
    oid = _id(practitioner_id, "practitioner id")
    ref = f"Practitioner/{oid}"
    return [
        Search("operator", ref, "Practitioner"),
        Search("operator_procedures", f"Procedure?performer={ref}&_count={PAGE_SIZE}", "Procedure"),
        Search(
            "operator_observations", f"Observation?focus={ref}&_count={PAGE_SIZE}", "Observation"
        ),
    ]


def order_search(order_id: str) -> Search:
    return Search("order", f"ServiceRequest/{_id(order_id, 'order id')}", "ServiceRequest")


def role_search(role_id: str) -> Search:
    """The order's performer as a PractitionerRole: read it to find the Practitioner."""
    return Search(
        "operator_role", f"PractitionerRole/{_id(role_id, 'role id')}", "PractitionerRole"
    )


def _points_to(reference: object, target: str) -> bool:
    text = reference.get("reference") if isinstance(reference, Mapping) else None
    return isinstance(text, str) and (text == target or text.endswith(f"/{target}"))


def _references(resource: Mapping[str, object], name: str) -> list[object]:
    """The References a planned search parameter matches on (patient, performer, focus)."""
    if name == "patient":
        return [resource.get("subject"), resource.get("patient")]
    items = resource.get(name)
    if not isinstance(items, list):
        return []
    if name == "performer":
        return [p.get("actor") for p in items if isinstance(p, Mapping)]
    return list(items)


def answers(search: Search, resource: Mapping[str, object]) -> bool:
    """Whether a raw resource answers a planned search: its type, and every reference parameter.

    A prefetch filled by the wrong query (another patient's record) or a server that ignored a
    parameter must not be read as the answer: what it left out would look like "not documented".
    """
    if resource.get("resourceType") != search.resource_type:
        return False
    path, _, query = search.path.partition("?")
    if not query:
        return resource.get("id") == unquote(path.rpartition("/")[2])
    for name, value in parse_qsl(query):
        if name.startswith("_"):
            continue
        target = unquote(value) if "/" in value else f"Patient/{unquote(value)}"
        if not any(_points_to(ref, target) for ref in _references(resource, name)):
            return False
    return True
