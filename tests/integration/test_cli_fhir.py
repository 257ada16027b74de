"""`cto-cds score --fhir` against the real FHIR server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.cli.test_app import run


@pytest.mark.usefixtures("fhir_deadline_env")
def test_score_from_the_fhir_server(fhir_base: str, cohort_expected: dict[str, Any]) -> None:
    patient = next(p for p in cohort_expected["patients"] if p["patient"] == "pt04")
    done = run("score", "--fhir", fhir_base, "--patient", "pt04", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    for name, want in patient["inputs"].items():
        assert out["inputs"][name]["value"] == want["value"], name
    assert out["context"]["order"] == "ServiceRequest/pt04-order"
