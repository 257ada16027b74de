"""Scopes the app asks for and what the granted scope allows (SM-04).

v2 syntax by default; the v1 equivalents only when the server advertises only `permission-v1`
(`.read` ≈ `.rs`, `.write` ≈ `.cud`). The token response's `scope` may differ from the request: the
page is read-only unless every write scope was granted, in either syntax.
"""

from __future__ import annotations

READ_V2 = (
    "patient/Patient.r",
    "patient/Condition.rs",
    "patient/Procedure.rs",
    "patient/Observation.rs",
    "patient/ServiceRequest.rs",
    # What the one fetch path (cds/sources/searches.py) also reads: angiography reports and the
    # order's operator. Without them the record is incomplete, and Save refuses to write from an
    # incomplete record (docs/write-back.md, failure semantics).
    "patient/DiagnosticReport.rs",
    "user/Practitioner.r",
    # Save first searches what the server already holds (idempotence): RiskAssessment too.
    "patient/RiskAssessment.rs",
)
WRITE_V2 = ("patient/Observation.c", "patient/RiskAssessment.c", "patient/Provenance.c")
READ_V1 = tuple(s.split(".")[0] + ".read" for s in READ_V2)
WRITE_V1 = tuple(s.split(".")[0] + ".write" for s in WRITE_V2)
IDENTITY = ("openid", "fhirUser")


def requested(*, ehr_launch: bool, v1_only: bool) -> str:
    """The `scope` parameter: `launch` for an EHR launch, `launch/patient` standalone (SM-09)."""
    launch = "launch" if ehr_launch else "launch/patient"
    data = READ_V1 + WRITE_V1 if v1_only else READ_V2 + WRITE_V2
    return " ".join((launch, *IDENTITY, *data))


def _grants(granted: set[str], resource_scope: str) -> bool:
    """True when `granted` covers one v2 `patient/Type.x` or v1 `patient/Type.read|write` scope."""
    prefix, _, perm = resource_scope.partition(".")
    if resource_scope in granted:
        return True
    kind = prefix.split("/", 1)[1]
    compartments = ("patient", "user")
    for scope in granted:
        head, _, have = scope.partition(".")
        where, _, what = head.partition("/")
        if where not in compartments or what not in (kind, "*"):
            continue
        have = have.split("?", 1)[0]
        if have in ("*", "write" if perm in ("c", "write") else "read"):
            return True
        if set(have) <= set("cruds") and set(perm) <= set(have):
            return True
    return False


def can_write(granted_scope: str) -> bool:
    """True when every write scope the Save button needs was granted (SM-04: else read-only)."""
    granted = set(granted_scope.split())
    return all(_grants(granted, scope) for scope in WRITE_V2)


def can_read(granted_scope: str) -> bool:
    granted = set(granted_scope.split())
    return all(_grants(granted, scope) for scope in READ_V2[:1])
