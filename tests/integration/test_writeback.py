"""Write-back against the real FHIR server: save, save again, change, and the next hook reads it.

Each test saves for its own new patient (a copy of cohort pt01 without findings, under a fresh id), so
tests do not see each other's resources and can run against a shared server.
"""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from cds.errors import WriteBackError
from cds.mapping.tables import load_tables
from cds.scoring.inputs import InputValue
from cds.sources.fhir import FetchLimits, FhirRestSource
from cds.sources.record import RecordRequest
from cds.writeback.build import validate_json
from cds.writeback.identity import IDENTIFIER_SYSTEM
from cds.writeback.send import Capabilities, FhirWriter, SaveResult, save
from tests.cli.test_app import run
from tests.integration.service_harness import auth, hook_body, service
from tests.writeback.test_build import FINDINGS

NOW = datetime(2026, 9, 3, 10, 0, tzinfo=UTC)
SLOW = FetchLimits(timeout=10.0, deadline=30.0)  # as cto-cds save: no hook budget on a busy machine
SERVICE = "/cds-services/operator-cto"


def new_patient(fhir_base: str, client: httpx.Client, cohort: list[dict[str, Any]]) -> str:
    """A copy of pt01 (mid-LAD CTO-PCI order, expert operator) with no findings, under a new id."""
    pid = f"wb-{uuid.uuid4().hex[:12]}"
    patient = copy.deepcopy(next(r for r in cohort if r["id"] == "pt01"))
    order = copy.deepcopy(next(r for r in cohort if r["id"] == "pt01-order"))
    patient["id"] = pid
    order["id"] = f"{pid}-order"
    order["subject"] = {"reference": f"Patient/{pid}"}
    for resource in (patient, order):
        url = f"{fhir_base}/{resource['resourceType']}/{resource['id']}"
        assert client.put(url, json=resource).status_code in (200, 201)
    return pid


def do_save(fhir_base: str, pid: str, entered: dict[str, InputValue], **kw: Any) -> SaveResult:
    async def go() -> SaveResult:
        async with httpx.AsyncClient() as client:
            return await save(
                FhirRestSource(fhir_base, client, limits=SLOW),
                FhirWriter(fhir_base, client),
                load_tables(),
                RecordRequest(patient_id=pid, order_id=f"{pid}-order"),
                entered,
                user="Practitioner/op-expert",
                now=kw.pop("now", NOW),
                **kw,
            )

    return asyncio.run(go())


def held(fhir_base: str, client: httpx.Client, kind: str, pid: str) -> list[dict[str, Any]]:
    param = "patient" if kind != "Provenance" else "_count=100&target:missing"
    if kind == "Provenance":
        bundle = client.get(f"{fhir_base}/Provenance", params={"_count": 500}).json()
        out = [e["resource"] for e in bundle.get("entry", [])]
        return [
            p for p in out if any(pid in json.dumps(t) for t in p.get("entity", []) + p["target"])
        ]
    bundle = client.get(f"{fhir_base}/{kind}", params={param: pid, "_count": 100}).json()
    # A server may ignore `patient` on a type (sekmet 0.1.1 RiskAssessment): keep this patient's.
    subject = {"reference": f"Patient/{pid}"}
    return [
        e["resource"] for e in bundle.get("entry", []) if e["resource"].get("subject") == subject
    ]


def ours(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        r
        for r in resources
        if any(i.get("system") == IDENTIFIER_SYSTEM for i in r.get("identifier", []))
    ]


def test_save_writes_the_expected_valid_resources_once(
    fhir_base: str, fhir_client: httpx.Client, cohort_resources: list[dict[str, Any]]
) -> None:
    pid = new_patient(fhir_base, fhir_client, cohort_resources)
    first = do_save(fhir_base, pid, FINDINGS)
    assert first.mode == "transaction"
    assert not first.updated
    assert not first.unchanged
    observations = ours(held(fhir_base, fhir_client, "Observation", pid))
    risks = ours(held(fhir_base, fhir_client, "RiskAssessment", pid))
    # 9 findings + 8 scores; the expert operator makes the Operator-CTO band known: one estimate.
    assert len(observations) == 9 + 8
    assert len(risks) == 1
    assert sorted(first.created) == sorted(
        f"{r['resourceType']}/{r['id']}" for r in observations + risks
    )
    for resource in observations + risks:
        validate_json(resource)
        assert resource["meta"]["versionId"] == "1"
    length = next(o for o in observations if o["code"]["text"] == "occlusion_length_mm")
    assert length["valueQuantity"] == {
        "value": 28.0,
        "unit": "mm",
        "system": "http://unitsofmeasure.org",
        "code": "mm",
    }
    assert length["bodySite"]["coding"][0]["code"] == "91748002"  # the order's mid LAD
    assert length["focus"] == [{"reference": f"ServiceRequest/{pid}-order"}]
    assert length["performer"] == [{"reference": "Practitioner/op-expert"}]
    operator = next(o for o in observations if o["code"]["text"] == "Operator-CTO")
    finding_refs = {
        f"Observation/{o['id']}"
        for o in observations
        if o["category"][0]["coding"][0]["code"] == "imaging"
    }
    derived = {d["reference"] for d in operator["derivedFrom"]}
    assert finding_refs <= derived  # urn:uuid references were resolved by the transaction
    cl_score = next(o for o in observations if o["code"]["text"] == "CL-score")
    assert "valueQuantity" in cl_score or "valueRange" in cl_score  # halves: not valueInteger
    risk = risks[0]
    assert risk["basis"] == [{"reference": f"Observation/{operator['id']}"}]
    provenances = held(fhir_base, fhir_client, "Provenance", pid)
    assert len(provenances) == 1
    assert {t["reference"] for t in provenances[0]["target"]} == set(first.created)
    # CL-score reads the target vessel (non-LAD item): the order is a source of the save.
    entities = {e["what"]["reference"] for e in provenances[0]["entity"]}
    assert f"ServiceRequest/{pid}-order" in entities

    again = do_save(fhir_base, pid, FINDINGS, now=datetime(2026, 9, 4, tzinfo=UTC))
    assert again.mode == "nothing to write"
    assert sorted(again.unchanged) == sorted(first.created)
    assert not again.created
    after = ours(held(fhir_base, fhir_client, "Observation", pid))
    assert {o["id"]: o["meta"]["versionId"] for o in after} == {o["id"]: "1" for o in observations}
    assert len(held(fhir_base, fhir_client, "Provenance", pid)) == 1


def test_a_changed_finding_updates_its_observation(
    fhir_base: str, fhir_client: httpx.Client, cohort_resources: list[dict[str, Any]]
) -> None:
    pid = new_patient(fhir_base, fhir_client, cohort_resources)
    first = do_save(fhir_base, pid, FINDINGS)
    changed = do_save(fhir_base, pid, {**FINDINGS, "occlusion_length_mm": 12.0})
    assert not changed.created
    length_ref = next(
        r for r, what in first.labels.items() if what == "finding occlusion_length_mm"
    )
    assert length_ref in changed.updated
    assert next(r for r, w in first.labels.items() if w == "finding stump") in changed.unchanged
    lengths = [
        o
        for o in ours(held(fhir_base, fhir_client, "Observation", pid))
        if o["code"]["text"] == "occlusion_length_mm"
    ]
    assert len(lengths) == 1  # never two current Observations for one finding
    assert lengths[0]["valueQuantity"]["value"] == 12.0
    assert lengths[0]["meta"]["versionId"] == "2"
    assert lengths[0]["status"] == "amended"
    assert do_save(fhir_base, pid, {**FINDINGS, "occlusion_length_mm": 12.0}).mode == (
        "nothing to write"
    )
    assert len(held(fhir_base, fhir_client, "Provenance", pid)) == 2


def test_an_estimate_saved_before_is_withdrawn_when_the_band_is_no_longer_known(
    fhir_base: str, fhir_client: httpx.Client, cohort_resources: list[dict[str, Any]]
) -> None:
    pid = new_patient(fhir_base, fhir_client, cohort_resources)
    do_save(fhir_base, pid, FINDINGS)
    (estimate,) = ours(held(fhir_base, fhir_client, "RiskAssessment", pid))
    assert "prediction" in estimate
    # The order now names no operator: experience unknown, Operator-CTO 0 to 4 points, no band.
    order_url = f"{fhir_base}/ServiceRequest/{pid}-order"
    order = fhir_client.get(order_url).json()
    del order["performer"]
    assert fhir_client.put(order_url, json=order).status_code == 200
    unknown = do_save(fhir_base, pid, FINDINGS)
    ref = f"RiskAssessment/{estimate['id']}"
    assert ref in unknown.updated
    (withdrawn,) = ours(held(fhir_base, fhir_client, "RiskAssessment", pid))
    validate_json(withdrawn)
    assert withdrawn["meta"]["versionId"] == "2"
    assert withdrawn["status"] == "amended"
    assert "prediction" not in withdrawn
    assert "no estimate" in withdrawn["note"][0]["text"]
    operator = next(
        o
        for o in ours(held(fhir_base, fhir_client, "Observation", pid))
        if o["code"]["text"] == "Operator-CTO"
    )
    assert "valueRange" in operator
    assert withdrawn["basis"] == [{"reference": f"Observation/{operator['id']}"}]
    provenances = held(fhir_base, fhir_client, "Provenance", pid)
    assert len(provenances) == 2
    assert any({"reference": ref} in p["target"] for p in provenances)
    assert do_save(fhir_base, pid, FINDINGS).mode == "nothing to write"


def test_sequential_write_when_the_server_has_no_transaction(
    fhir_base: str,
    fhir_client: httpx.Client,
    cohort_resources: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = FhirWriter.read_capabilities

    async def no_transaction(self: FhirWriter) -> Capabilities:
        self.capabilities = replace(await real(self), transaction=False)
        return self.capabilities

    monkeypatch.setattr(FhirWriter, "read_capabilities", no_transaction)
    pid = new_patient(fhir_base, fhir_client, cohort_resources)
    first = do_save(fhir_base, pid, FINDINGS)
    assert first.mode == "sequential"
    observations = ours(held(fhir_base, fhir_client, "Observation", pid))
    operator = next(o for o in observations if o["code"]["text"] == "Operator-CTO")
    assert not [d for d in operator["derivedFrom"] if d["reference"].startswith("urn:")]
    provenance = held(fhir_base, fhir_client, "Provenance", pid)
    assert len(provenance) == 1
    assert {t["reference"] for t in provenance[0]["target"]} == set(first.created)
    assert do_save(fhir_base, pid, FINDINGS).mode == "nothing to write"


def test_a_provenance_lost_in_a_sequential_save_is_sent_by_the_next_save(
    fhir_base: str,
    fhir_client: httpx.Client,
    cohort_resources: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_capabilities, real_send = FhirWriter.read_capabilities, FhirWriter._send
    refused: list[str] = []

    async def no_transaction(self: FhirWriter) -> Capabilities:
        self.capabilities = replace(await real_capabilities(self), transaction=False)
        return self.capabilities

    async def provenance_refused_once(
        self: FhirWriter, method: str, path: str, what: str, **kw: Any
    ) -> httpx.Response:
        if method == "POST" and path == "Provenance" and not refused:
            refused.append(path)
            return httpx.Response(403, json={"resourceType": "OperationOutcome", "issue": []})
        return await real_send(self, method, path, what, **kw)

    monkeypatch.setattr(FhirWriter, "read_capabilities", no_transaction)
    monkeypatch.setattr(FhirWriter, "_send", provenance_refused_once)
    pid = new_patient(fhir_base, fhir_client, cohort_resources)
    with pytest.raises(WriteBackError, match="Provenance: refused, HTTP 403") as caught:
        do_save(fhir_base, pid, FINDINGS)
    assert not held(fhir_base, fhir_client, "Provenance", pid)
    completed = do_save(fhir_base, pid, FINDINGS)
    assert completed.mode == "sequential"
    assert set(completed.unchanged) == set(caught.value.written)
    (provenance,) = held(fhir_base, fhir_client, "Provenance", pid)
    validate_json(provenance)
    assert {t["reference"] for t in provenance["target"]} == set(caught.value.written)
    assert do_save(fhir_base, pid, FINDINGS).mode == "nothing to write"
    assert len(held(fhir_base, fhir_client, "Provenance", pid)) == 1


def _operator_card(client: Any, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(SERVICE, json=body, headers=auth(SERVICE))
    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    assert cards
    return dict(cards[0])


def test_the_next_hook_and_score_use_the_saved_findings(
    tmp_path: Path,
    fhir_base: str,
    fhir_client: httpx.Client,
    cohort_resources: list[dict[str, Any]],
) -> None:
    pid = new_patient(fhir_base, fhir_client, cohort_resources)
    order = next(
        r for r in held(fhir_base, fhir_client, "ServiceRequest", pid) if r["id"] == f"{pid}-order"
    )
    body = hook_body("order-select", pid, cohort_resources, fhir_server=fhir_base, order=order)
    with service(tmp_path, fhir_base) as client:
        before = _operator_card(client, body)
        do_save(fhir_base, pid, FINDINGS)
        after = _operator_card(client, {**body, "hookInstance": str(uuid.uuid4())})
    assert before["summary"] != after["summary"]
    # Lesion points 6 (stump, calcification, length, distal disease, Rentrop < 2: no; see items)
    # minus 4 for the expert operator: known points, one band, its estimate.
    done = run("score", "--fhir", fhir_base, "--patient", pid, "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    operator = out["scores"]["operator_cto"]
    assert operator["points"] is not None
    assert operator["band"] in after["summary"]
    for name, value in FINDINGS.items():
        assert out["inputs"][name]["value"] == value, name
        assert out["inputs"][name]["note"] == "entered by clinician", name
        assert out["inputs"][name]["evidence"] == "lesion"


def test_concurrent_saves_of_one_order_write_once(
    fhir_base: str, fhir_client: httpx.Client, cohort_resources: list[dict[str, Any]]
) -> None:
    """Conditional create is not atomic on every server: the per-key lock serialises the saves."""
    pid = new_patient(fhir_base, fhir_client, cohort_resources)

    async def both() -> list[SaveResult]:
        async with httpx.AsyncClient() as client:
            tables = load_tables()
            request = RecordRequest(patient_id=pid, order_id=f"{pid}-order")
            return list(
                await asyncio.gather(
                    *(
                        save(
                            FhirRestSource(fhir_base, client, limits=SLOW),
                            FhirWriter(fhir_base, client),
                            tables,
                            request,
                            FINDINGS,
                            user=None,
                            now=NOW,
                        )
                        for _ in range(2)
                    )
                )
            )

    results = asyncio.run(both())
    assert sorted(r.mode for r in results) == ["nothing to write", "transaction"]
    assert len(ours(held(fhir_base, fhir_client, "Observation", pid))) == 9 + 8
    assert len(held(fhir_base, fhir_client, "Provenance", pid)) == 1
