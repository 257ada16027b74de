"""Scopes the app asks for and what the granted scope allows (SM-04).

v2 syntax by default; the v1 equivalents only when the server advertises only `permission-v1`
(`.read` ≈ `.rs`, `.write` ≈ `.cud`). The token response's `scope` may differ from the request: the
page is read-only unless every type Save writes may be created, in either syntax.

Save updates a finding, score or estimate saved before in place (same write-back identifier, PUT;
docs/write-back.md), so the app asks `.cu` for Observation and RiskAssessment; a Provenance is
always new (`.c`). A grant without `u` leaves Save create-only: `may_update` tells the write path
which types it may update, and a plan that would update another is refused before any write.
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
    # ... and whether the saves it finds unchanged have their Provenance (a sequential save whose
    # Provenance POST failed is completed by the next one; without it that check is skipped), and
    # its Provenance is a conditional create, which a server may count as a search.
    "patient/Provenance.rs",
)
WRITE_V2 = ("patient/Observation.cu", "patient/RiskAssessment.cu", "patient/Provenance.c")
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
        if have in ("*", "read" if perm in ("r", "s", "rs", "read") else "write"):
            return True
        if set(have) <= set("cruds") and set(perm) <= set(have):
            return True
    return False


def _types(scopes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(s.split(".")[0] for s in scopes)


def can_write(granted_scope: str) -> bool:
    """True when every type Save writes may be created (SM-04: else the page is read-only)."""
    granted = set(granted_scope.split())
    return all(_grants(granted, f"{scope}.c") for scope in _types(WRITE_V2))


def may_update(granted_scope: str) -> frozenset[str]:
    """The resource types Save writes that the grant also lets it update (`u`, v1 `.write`)."""
    granted = set(granted_scope.split())
    return frozenset(
        scope.split("/", 1)[1] for scope in _types(WRITE_V2) if _grants(granted, f"{scope}.u")
    )


def can_read(granted_scope: str) -> bool:
    granted = set(granted_scope.split())
    return all(_grants(granted, scope) for scope in READ_V2[:1])
