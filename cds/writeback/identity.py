"""Stable identity of written resources: identifier system, keys and content digests (pure).

Every resource the write-back holds carries `identifier = {IDENTIFIER_SYSTEM, key}` where the key is
a hash of (patient, order, what it records), e.g. the stump finding of ServiceRequest/7 for Patient/3.
The key does not depend on the value, so a changed finding updates the same Observation: there is
never a second current Observation for one finding of one order.

A digest of what the resource says (value, codes, references; not the time it was written nor who
pressed Save) rides along as an extension, so comparing with the server is one string comparison and
does not depend on how a server re-serialises JSON.
"""

from __future__ import annotations

import hashlib
import json
import uuid

PROJECT_BASE = "http://cto-cds.org/fhir"
IDENTIFIER_SYSTEM = f"{PROJECT_BASE}/NamingSystem/write-back"
DIGEST_EXTENSION = f"{PROJECT_BASE}/StructureDefinition/write-back-digest"
ESTIMATE_EXTENSION = f"{PROJECT_BASE}/StructureDefinition/published-estimate"
SAVE_EXTENSION = f"{PROJECT_BASE}/StructureDefinition/write-back-save"
SAVE_SYSTEM = f"{PROJECT_BASE}/NamingSystem/write-back-save"
"""The save that wrote a resource's current version: an extension on it, a tag on its Provenance."""
METHOD_SYSTEM = f"{PROJECT_BASE}/CodeSystem/cto-score-method"
ITEM_SYSTEM = f"{PROJECT_BASE}/CodeSystem/cto-score-item"
BAND_SYSTEM = f"{PROJECT_BASE}/CodeSystem/cto-score-band"
DEVICE_SYSTEM = f"{PROJECT_BASE}/NamingSystem/software"
ENTERED_NOTE = "entered by clinician"
"""The provenance note of an input read from a written-back finding (evidence stays `lesion`)."""

_NAMESPACE = uuid.UUID("6f0f3c1e-2b8a-5d2e-9a51-4c1d2b0c7e11")


def resource_key(patient_id: str, order_ref: str, what: str) -> str:
    """The identifier value of the resource recording `what` for this patient's order."""
    text = f"{patient_id}|{order_ref}|{what}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]


def full_url(key: str) -> str:
    """The urn:uuid a planned resource is known by until the server gives it an id."""
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, key)}"


def digest(content: object) -> str:
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def identifier_token(key: str) -> str:
    """The search token for a key (If-None-Exist, identifier searches)."""
    return f"{IDENTIFIER_SYSTEM}|{key}"
