"""Requested scopes and the granted-scope check (SM-04)."""

from __future__ import annotations

import pytest

from cds.app.scopes import can_write, may_update, requested


def test_requested_v2_and_v1() -> None:
    v2 = requested(ehr_launch=True, v1_only=False).split()
    assert v2[:3] == ["launch", "openid", "fhirUser"]
    assert "patient/ServiceRequest.rs" in v2
    assert "patient/Provenance.c" in v2
    assert {"patient/Observation.cu", "patient/RiskAssessment.cu"} <= set(v2)
    v1 = requested(ehr_launch=False, v1_only=True).split()
    assert v1[0] == "launch/patient"
    assert "patient/Condition.read" in v1
    assert "patient/RiskAssessment.write" in v1


@pytest.mark.parametrize(
    ("granted", "writes"),
    [
        ("patient/Observation.c patient/RiskAssessment.c patient/Provenance.c", True),
        ("patient/*.cruds", True),
        ("patient/*.write", True),
        ("patient/Observation.write patient/RiskAssessment.write patient/Provenance.write", True),
        ("user/Observation.cu patient/RiskAssessment.c patient/Provenance.c", True),
        ("patient/*.rs", False),
        ("patient/*.read", False),
        ("patient/Observation.c patient/RiskAssessment.c", False),  # Provenance missing
        ("system/*.c", False),
        ("", False),
    ],
)
def test_can_write(granted: str, writes: bool) -> None:
    assert can_write(granted) is writes


def test_the_app_asks_for_every_read_of_the_fetch_path() -> None:
    """Reports and the operator too: Save refuses to write from an incomplete record."""
    asked = requested(ehr_launch=True, v1_only=False).split()
    assert {
        "patient/DiagnosticReport.rs",
        "user/Practitioner.r",
        "patient/RiskAssessment.rs",
        "patient/Provenance.rs",  # Save checks the Provenance of the saves it finds unchanged
    } <= set(asked)
    v1 = requested(ehr_launch=True, v1_only=True).split()
    assert {"patient/DiagnosticReport.read", "user/Practitioner.read"} <= set(v1)


@pytest.mark.parametrize(
    ("granted", "updatable"),
    [
        ("patient/Observation.cu patient/RiskAssessment.cu patient/Provenance.c", {"O", "R"}),
        ("patient/Observation.c patient/RiskAssessment.c patient/Provenance.c", set()),
        ("patient/Observation.cu patient/RiskAssessment.c patient/Provenance.c", {"O"}),
        ("patient/*.cruds", {"O", "R", "P"}),
        ("patient/*.write", {"O", "R", "P"}),  # v1: write = create, update, delete
        ("user/Observation.u", {"O"}),
        ("patient/*.rs", set()),
        ("patient/*.read", set()),
        ("system/*.cu", set()),
    ],
)
def test_may_update(granted: str, updatable: set[str]) -> None:
    names = {"O": "Observation", "R": "RiskAssessment", "P": "Provenance"}
    assert may_update(granted) == {names[n] for n in updatable}


def test_a_create_only_grant_still_writes() -> None:
    """Without `u` Save stays available (create only); the write path refuses updates."""
    assert can_write("patient/Observation.c patient/RiskAssessment.c patient/Provenance.c")
    assert not can_write("patient/Observation.u patient/RiskAssessment.u patient/Provenance.u")
