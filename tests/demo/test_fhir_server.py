"""The cohort loader: transaction Bundles, and plain PUTs on a server that refuses them.

The transaction path runs against the real FHIR server in tests/integration (conftest loads the
cohort with it); here respx injects the one fault a real sekmet cannot: refusing transactions.
"""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from cds.demo.fhir_server import BUNDLE_SIZE, FhirServerError, load_cohort

BASE = "http://fhir.test/fhir"
RESOURCES = [{"resourceType": "Patient", "id": f"p{i}"} for i in range(BUNDLE_SIZE + 3)] + [
    {"resourceType": "Practitioner", "id": "op1"}
]


def _count(request: httpx.Request) -> httpx.Response:
    ids = request.url.params["_id"].split(",")
    return httpx.Response(200, json={"resourceType": "Bundle", "total": len(ids)})


@respx.mock
def test_falls_back_to_puts_when_transactions_are_refused() -> None:
    post = respx.post(BASE).mock(return_value=httpx.Response(405))
    put = respx.put(url__startswith=f"{BASE}/").mock(return_value=httpx.Response(201))
    respx.get(url__startswith=f"{BASE}/").mock(side_effect=_count)
    done: list[int] = []
    with httpx.Client() as client:
        counts = load_cohort(BASE, RESOURCES, client, done.append)
    assert counts == {"Patient": BUNDLE_SIZE + 3, "Practitioner": 1}
    assert post.call_count == 1  # asked once, then PUTs only
    assert put.call_count == len(RESOURCES)
    assert sum(done) == len(RESOURCES)
    # referenced resources first
    assert put.calls[0].request.url.path.endswith("/Practitioner/op1")


@respx.mock
def test_transactions_in_bundles_with_progress() -> None:
    def accept(request: httpx.Request) -> httpx.Response:
        bundle = json.loads(request.content)
        assert bundle["type"] == "transaction"
        assert all(e["request"]["method"] == "PUT" for e in bundle["entry"])
        entries = [{"response": {"status": "201 Created"}} for _ in bundle["entry"]]
        return httpx.Response(200, json={"resourceType": "Bundle", "entry": entries})

    post = respx.post(BASE).mock(side_effect=accept)
    put = respx.put(url__startswith=f"{BASE}/").mock(return_value=httpx.Response(201))
    respx.get(url__startswith=f"{BASE}/").mock(side_effect=_count)
    done: list[int] = []
    with httpx.Client() as client:
        load_cohort(BASE, RESOURCES, client, done.append)
    assert post.call_count == 2
    assert put.call_count == 0
    assert done == [BUNDLE_SIZE, 4]


@respx.mock
def test_a_failed_entry_is_an_error() -> None:
    failed = {"response": {"status": "422 Unprocessable Entity"}}
    respx.post(BASE).mock(
        return_value=httpx.Response(200, json={"resourceType": "Bundle", "entry": [failed]})
    )
    with httpx.Client() as client, pytest.raises(FhirServerError, match="entries failed"):
        load_cohort(BASE, RESOURCES[:1], client)
