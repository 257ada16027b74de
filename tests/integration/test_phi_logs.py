"""No patient data reaches the log: the whole demo cohort through a real `cto-cds serve` process.

Every cohort patient is called twice — order-select with the full prefetch, order-sign reading
everything from the FHIR server with an access token — each card gets feedback whose comment holds
the patient's name, and refusals (bad JWT, another patient, unreadable Patient) and an app launch
are mixed in. Then every line the process wrote (stdout and stderr: uvicorn's and ours) must be a
JSON object, one `hook_call` line per hook call, and none may contain a cohort name, identifier
value, resource id, birth date, or any token the service was given. `/metrics` is scanned too.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx

from cds.demo.ehr import EhrKeys, hook_request, sign_client_jwt
from cds.demo.run import cohort_patients
from tests.integration.conftest import FHIR_DEADLINE
from tests.integration.serve_process import ISS, lines, serve_env, serving, trust_file
from tests.integration.service_harness import full_prefetch

SERVICE = "/cds-services/operator-cto"
FEEDBACK = SERVICE + "/feedback"
METRICS_TOKEN = "metrics-" + uuid.uuid4().hex
SECRET = "app-context-" + uuid.uuid4().hex


def phi(cohort: list[dict[str, Any]]) -> set[str]:
    """What must never be logged: names, identifier values, birth dates and ids of the cohort."""
    found: set[str] = set()
    for resource in cohort:
        if len(resource.get("id", "")) >= 4:
            found.add(resource["id"])
        for name in resource.get("name", []) if resource["resourceType"] != "Organization" else []:
            found.update(n for n in [name.get("family"), name.get("text")] if n)
            found.update(name.get("given", []))
        found.update(i["value"] for i in resource.get("identifier", []) if "value" in i)
        if "birthDate" in resource:
            found.add(resource["birthDate"])
    return found


def test_the_cohort_through_the_service_leaves_no_phi_in_its_log(
    tmp_path: Path, fhir_base: str, cohort_resources: list[dict[str, Any]]
) -> None:
    keys = EhrKeys.generate("ES384", kid="phi-scan")
    public = "http://127.0.0.1:8000"  # what the EHR calls (aud); the process listens elsewhere
    env = serve_env(
        public_base_url=public,
        trusted_clients=str(trust_file(tmp_path, keys)),
        allowed_fhir_servers=fhir_base,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'cds.db'}",
        fhir_deadline=str(FHIR_DEADLINE),
        metrics_token=METRICS_TOKEN,
        app_context_secret=SECRET,
    )
    tokens: set[str] = {METRICS_TOKEN, SECRET}
    log = tmp_path / "serve.log"
    patients = cohort_patients(cohort_resources)
    assert len(patients) == 32
    by_id = {r["id"]: r for r in cohort_resources if r["resourceType"] == "Patient"}
    hook_calls = 0
    with serving(env, tmp_path, log) as address, httpx.Client(timeout=60) as ehr:

        def signed(path: str) -> dict[str, str]:
            token = sign_client_jwt(keys, ISS, public + path)
            tokens.add(token)
            return {"Authorization": f"Bearer {token}"}

        def call(body: dict[str, Any]) -> httpx.Response:
            nonlocal hook_calls
            hook_calls += 1
            return ehr.post(address + SERVICE, json=body, headers=signed(SERVICE))

        for patient in patients:
            order = next(
                r
                for r in cohort_resources
                if r["resourceType"] == "ServiceRequest"
                and r["subject"]["reference"] == f"Patient/{patient}"
            )
            access = "access-" + uuid.uuid4().hex
            tokens.add(access)
            auth = {"access_token": access, "token_type": "Bearer", "expires_in": 300,
                    "scope": "patient/*.read", "subject": "cto-cds", "patient": patient}  # fmt: skip
            select = call(
                hook_request(
                    "order-select",
                    order=order,
                    patient_id=patient,
                    prefetch=full_prefetch(patient, cohort_resources),
                )
            )
            sign = call(
                hook_request(
                    "order-sign",
                    order=order,
                    patient_id=patient,
                    fhir_server=fhir_base,
                    fhir_authorization=auth,
                )
            )
            for response in (select, sign):
                assert response.status_code == 200, (patient, response.text)
                (card,) = response.json()["cards"]
                name = (by_id[patient].get("name") or [{"given": ["Anon"], "family": "Ymous"}])[0]
                item = {
                    "card": card["uuid"],
                    "outcome": "overridden",
                    "outcomeTimestamp": "2026-12-01T10:00:00Z",
                    "overrideReason": {
                        "reason": card["overrideReasons"][0],
                        "userComment": f"{name['given'][0]} {name['family']} {patient}",
                    },
                }
                stored = ehr.post(
                    address + FEEDBACK, json={"feedback": [item]}, headers=signed(FEEDBACK)
                )
                assert stored.status_code == 200, stored.text
        # Refusals: a bad signature, another patient's order, a Patient that cannot be read.
        forged = sign_client_jwt(EhrKeys.generate("ES384", kid="phi-scan"), ISS, public + SERVICE)
        tokens.add(forged)
        own = next(
            r
            for r in cohort_resources
            if r["resourceType"] == "ServiceRequest"
            and r["subject"]["reference"] == f"Patient/{patients[0]}"
        )
        first = hook_request("order-select", order=own, patient_id=patients[0])
        refused = ehr.post(
            address + SERVICE, json=first, headers={"Authorization": f"Bearer {forged}"}
        )
        assert refused.status_code == 401
        assert call(first).status_code == 412  # no prefetch, no FHIR server
        crossed = hook_request("order-select", order=order, patient_id=patients[0])
        assert call(crossed).status_code == 400  # the order is another patient's
        launch = "launch-" + uuid.uuid4().hex
        tokens.add(launch)
        opened = ehr.get(address + "/app/launch", params={"iss": fhir_base, "launch": launch})
        assert opened.status_code != 500
        metrics = ehr.get(
            address + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
        ).text
    written = lines(log)
    records = [json.loads(line) for line in written]  # every line is one JSON object
    assert all(isinstance(r, dict) and {"ts", "level", "logger", "msg"} <= set(r) for r in records)
    hooks = [r for r in records if r.get("event") == "hook_call"]
    assert len(hooks) == hook_calls == 2 * 32 + 2
    assert sum(r["outcome"] == "card" for r in hooks) == 64
    assert 'cto_cds_hook_calls_total{hook="order-select",outcome="card"} 32.0' in metrics
    assert 'cto_cds_feedback_total{outcome="overridden"} 64.0' in metrics
    needles = phi(cohort_resources) | tokens
    assert len(needles) > 900
    leaks = {n: line for line in [*written, *metrics.splitlines()] for n in needles if n in line}
    assert leaks == {}
