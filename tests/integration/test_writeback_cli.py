"""`cto-cds save` against the real FHIR server: --json, a repeat, --dry-run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.cli.test_app import run
from tests.integration.test_writeback import held, new_patient, ours
from tests.writeback.test_build import FINDINGS


def test_save_then_again_then_a_dry_run_of_a_change(
    tmp_path: Path,
    fhir_base: str,
    fhir_client: httpx.Client,
    cohort_resources: list[dict[str, Any]],
) -> None:
    pid = new_patient(fhir_base, fhir_client, cohort_resources)
    path = tmp_path / "findings.json"
    path.write_text(json.dumps(FINDINGS))
    args = ["save", "--fhir", fhir_base, "--patient", pid, "--inputs", str(path)]
    args += ["--order", f"ServiceRequest/{pid}-order", "--user", "Practitioner/op-expert"]
    first = run(*args, "--json")
    assert first.returncode == 0, first.stderr
    created = json.loads(first.stdout)
    assert len(created["created"]) == 9 + 8 + 1
    assert created["updated"] == created["unchanged"] == []

    again = run(*args, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == {
        "created": [],
        "updated": [],
        "unchanged": created["created"],
    }

    path.write_text(json.dumps({**FINDINGS, "stump": "tapered"}))
    dry = run(*args, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    bundle = json.loads(dry.stdout)
    assert bundle["type"] == "transaction"
    methods = [(e["request"]["method"], e["request"]["url"].split("/")[0]) for e in bundle["entry"]]
    # The stump finding and the scores that read it change; the Provenance says who and from what.
    assert ("PUT", "Observation") in methods
    assert methods[-1] == ("POST", "Provenance")
    assert all(m == "PUT" for m, _ in methods[:-1])
    versions = {
        o["meta"]["versionId"] for o in ours(held(fhir_base, fhir_client, "Observation", pid))
    }
    assert versions == {"1"}  # the dry run sent nothing

    table = run(*args)
    assert table.returncode == 0, table.stderr
    assert "updated" in table.stdout
    assert "finding stump" in table.stdout
