"""`cto-cds demo load --fhir BASE` against the suite's real FHIR server (sekmet, or HAPI via
CTO_CDS_TEST_FHIR_BASE): what is missing or changed is written back, a second run writes nothing."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from cds.demo.cohort_load import SERVER_ADDED
from cds.demo.fhir_server import FHIR_JSON, query, running_fhir_server
from cds.demo.ports import free_port
from tests.cli.test_app import run

Resource = dict[str, Any]
_DONE = re.compile(r": cohort of (\d+) resources: (\d+) written, (\d+) already there\n$")


def _load(base: str) -> tuple[int, int, int]:
    done = run("demo", "load", "--fhir", base, "--timeout", "30")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{base}: cohort of ")
    match = _DONE.search(done.stdout)
    assert match, done.stdout
    total, written, unchanged = (int(g) for g in match.groups())
    return total, written, unchanged


def _content(resource: Resource) -> Resource:
    return {k: v for k, v in resource.items() if k not in SERVER_ADDED}


def _unreferenced_observation(resources: list[Resource]) -> Resource:
    # One nothing points at (a DiagnosticReport's `result` would dangle while it is deleted).
    text = "\n".join(str(r) for r in resources if r["resourceType"] != "Observation")
    return next(
        r
        for r in resources
        if r["resourceType"] == "Observation" and f"Observation/{r['id']}" not in text
    )


def test_load_into_an_empty_server_writes_the_whole_cohort(
    tmp_path: Path, fhir_client: httpx.Client, cohort_resources: list[Resource]
) -> None:
    with running_fhir_server(tmp_path) as base:
        assert _load(base) == (1837, 1837, 0)
        for rtype, count in Counter(r["resourceType"] for r in cohort_resources).items():
            found = fhir_client.get(f"{base}/{rtype}?{query([('_summary', 'count')])}").json()
            assert found["total"] == count, rtype
        assert _load(base) == (1837, 0, 1837)


def test_load_restores_what_is_missing_or_changed_and_a_second_run_writes_nothing(
    fhir_base: str, fhir_client: httpx.Client, cohort_resources: list[Resource]
) -> None:
    total, _, _ = _load(fhir_base)  # whatever earlier tests did, the cohort is whole afterwards
    assert total == len(cohort_resources) == 1837
    assert _load(fhir_base) == (total, 0, total)

    patient = next(r for r in cohort_resources if r["id"] == "pt05")
    changed = {**patient, "gender": "unknown" if patient.get("gender") != "unknown" else "other"}
    put = fhir_client.put(
        f"{fhir_base}/Patient/pt05", json=changed, headers={"Content-Type": FHIR_JSON}
    )
    assert put.status_code in (200, 201), put.text
    observation = _unreferenced_observation(cohort_resources)
    gone = f"{fhir_base}/Observation/{observation['id']}"
    assert fhir_client.delete(gone).status_code in (200, 204)
    assert fhir_client.get(gone).status_code in (404, 410)

    assert _load(fhir_base) == (total, 2, total - 2)
    restored_patient = fhir_client.get(f"{fhir_base}/Patient/pt05").json()
    assert _content(restored_patient) == _content(patient)
    assert _content(fhir_client.get(gone).json()) == _content(observation)

    # The second run writes nothing: no new version of what the first one restored.
    assert _load(fhir_base) == (total, 0, total)
    again = fhir_client.get(f"{fhir_base}/Patient/pt05").json()
    assert again["meta"] == restored_patient["meta"]


def test_load_from_an_unreachable_url_is_one_line_and_exit_2() -> None:
    base = f"http://127.0.0.1:{free_port()}/fhir"
    done = run("demo", "load", "--fhir", base, "--timeout", "0.5")
    assert done.returncode == 2
    assert done.stderr.startswith(f"cto-cds: error: {base}/metadata: no FHIR server answered")
    assert done.stderr.count("\n") == 1
