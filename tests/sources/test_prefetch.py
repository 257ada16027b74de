"""PrefetchSource: full, partial, null, OperationOutcome, paginated and wrong-shaped prefetch (CH-12)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping, Sequence

import httpx
import pytest
import respx

from cds.sources.fhir import Continuation, FetchLimits, FhirRestSource
from cds.sources.files import FileSource
from cds.sources.prefetch import PagingSource, PrefetchSource
from cds.sources.reasons import Problem
from cds.sources.record import Fetched, PatientRecord, RecordRequest, RecordSource, read_record
from cds.sources.searches import Search, patient_searches

BASE = "https://ehr.example.org/fhir"
PID = "pat-1"
PATIENT = {"resourceType": "Patient", "id": PID, "birthDate": "1956-03-02"}
SEARCHES = patient_searches(PID)
KEYS = [s.key for s in SEARCHES]


def bundle(*resources: Mapping[str, object], next_url: str | None = None) -> dict[str, object]:
    result: dict[str, object] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }
    if next_url is not None:
        result["link"] = [{"relation": "next", "url": next_url}]
    return result


def condition(cid: str) -> dict[str, object]:
    return {"resourceType": "Condition", "id": cid, "subject": {"reference": f"Patient/{PID}"}}


OUTCOME = {
    "resourceType": "OperationOutcome",
    "issue": [
        {"severity": "error", "code": "timeout", "diagnostics": f"query for {PID} timed out"}
    ],
}
FULL: dict[str, object] = {
    "patient": PATIENT,
    "conditions": bundle(condition("c1")),
    "procedures": bundle(),
    "observations": bundle(),
    "reports": bundle(),
    "orders": bundle(),
}


class Recorder:
    """A fallback that records each fetch call and answers every search with one marker resource."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    async def fetch(self, searches: Sequence[Search]) -> dict[str, Fetched]:
        self.calls.append([s.key for s in searches])
        return {s.key: Fetched(s.key, ({"resourceType": "Basic", "id": s.key},)) for s in searches}


def run(source: RecordSource, searches: Sequence[Search] = SEARCHES) -> dict[str, Fetched]:
    return asyncio.run(source.fetch(searches))


@pytest.fixture
def server() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


def rest_run(prefetch: Mapping[str, object]) -> dict[str, Fetched]:
    async def go() -> dict[str, Fetched]:
        async with httpx.AsyncClient() as client:
            fallback = FhirRestSource(BASE, client, token="t0k", limits=FetchLimits(deadline=2.0))
            return await PrefetchSource(prefetch, fallback).fetch(SEARCHES)

    return asyncio.run(go())


def test_full_prefetch_sends_no_request(server: respx.MockRouter) -> None:
    results = rest_run(FULL)
    assert server.calls.call_count == 0
    assert all(r.complete for r in results.values())
    assert results["patient"].resources == (PATIENT,)
    assert [r["id"] for r in results["conditions"].resources] == ["c1"]


def test_partial_prefetch_fetches_only_the_missing_keys_in_one_round() -> None:
    fallback = Recorder()
    results = run(PrefetchSource({"patient": PATIENT, "conditions": bundle()}, fallback))
    assert fallback.calls == [["procedures", "observations", "reports", "orders"]]
    assert results["patient"].resources == (PATIENT,)
    assert results["orders"].resources == ({"resourceType": "Basic", "id": "orders"},)
    assert sorted(results) == sorted(KEYS)


def test_partial_prefetch_requests_run_concurrently(server: respx.MockRouter) -> None:
    in_flight = most = 0
    paths: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        paths.append(request.url.path)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return httpx.Response(200, json=bundle())

    server.get(path__regex=r".*").mock(side_effect=handler)

    async def go() -> dict[str, Fetched]:
        async with httpx.AsyncClient() as client:
            source = PrefetchSource({"patient": PATIENT}, FhirRestSource(BASE, client))
            return await source.fetch(SEARCHES)

    results = asyncio.run(go())
    assert all(r.complete for r in results.values())
    assert most == 5
    assert "/fhir/Patient/pat-1" not in paths


def test_null_means_ran_with_no_data() -> None:
    fallback = Recorder()
    prefetch = dict(FULL, conditions=None, patient=None)
    results = run(PrefetchSource(prefetch, fallback))
    assert fallback.calls == []
    assert results["conditions"] == Fetched("conditions")
    assert results["conditions"].complete
    assert results["patient"].error == "patient (Patient read): not found (prefetch was null)"


def test_operation_outcome_asks_the_fallback() -> None:
    fallback = Recorder()
    results = run(PrefetchSource(dict(FULL, procedures=OUTCOME), fallback))
    assert fallback.calls == [["procedures"]]
    assert results["procedures"].complete
    assert results["procedures"].resources == ({"resourceType": "Basic", "id": "procedures"},)


def test_operation_outcome_without_fallback_keeps_its_summary_without_ids() -> None:
    results = run(PrefetchSource(dict(FULL, procedures=OUTCOME), None))
    assert results["procedures"].error == (
        "procedures (Procedure search): server error (prefetch was an OperationOutcome: query for"
        " *** timed out; no FHIR server to ask)"
    )


def test_fallback_error_after_operation_outcome_says_both(server: respx.MockRouter) -> None:
    server.get("/Procedure").respond(500)
    results = rest_run(dict(FULL, procedures=OUTCOME))
    assert results["procedures"].error == (
        "procedures (Procedure search): server error (HTTP 500); "
        "prefetch was an OperationOutcome: query for *** timed out"
    )


def test_paginated_prefetch_is_finished_through_the_fallback(server: respx.MockRouter) -> None:
    page2 = server.get("/Condition", params={"_page": "2"}).respond(
        json=bundle(condition("c2"), next_url=f"{BASE}/Condition?_page=3")
    )
    server.get("/Condition", params={"_page": "3"}).respond(json=bundle(condition("c3")))
    prefetch = dict(FULL, conditions=bundle(condition("c1"), next_url=f"{BASE}/Condition?_page=2"))
    results = rest_run(prefetch)
    assert results["conditions"].complete
    assert [r["id"] for r in results["conditions"].resources] == ["c1", "c2", "c3"]
    assert page2.calls.last.request.headers["Authorization"] == "Bearer t0k"
    assert server.calls.call_count == 2


def test_paginated_prefetch_next_link_outside_the_server_is_not_followed(
    server: respx.MockRouter,
) -> None:
    elsewhere = respx.get("https://evil.example.com/fhir/Condition").respond(json=bundle())
    prefetch = dict(
        FULL,
        conditions=bundle(
            condition("c1"), next_url="https://evil.example.com/fhir/Condition?_page=2"
        ),
    )
    result = rest_run(prefetch)["conditions"]
    assert result.error == (
        "conditions (Condition search): server not allowed (next link outside the FHIR base)"
    )
    assert [r["id"] for r in result.resources] == ["c1"]
    assert elsewhere.call_count == 0


def test_paginated_prefetch_without_fallback_is_truncated() -> None:
    prefetch = dict(FULL, conditions=bundle(condition("c1"), next_url=f"{BASE}/Condition?_page=2"))
    result = run(PrefetchSource(prefetch, None))["conditions"]
    assert result.truncated
    assert result.error is None
    assert [r["id"] for r in result.resources] == ["c1"]


def test_paginated_prefetch_with_a_fallback_that_cannot_page_reruns_the_search() -> None:
    fallback = Recorder()
    assert not isinstance(fallback, PagingSource)
    prefetch = dict(FULL, conditions=bundle(condition("c1"), next_url=f"{BASE}/Condition?_page=2"))
    results = run(PrefetchSource(prefetch, fallback))
    assert fallback.calls == [["conditions"]]
    assert results["conditions"].resources == ({"resourceType": "Basic", "id": "conditions"},)


def test_paging_fallback_gets_missing_keys_and_continuations_in_one_call() -> None:
    class Pager(Recorder):
        async def fetch_and_continue(
            self, searches: Sequence[Search], continuations: Sequence[Continuation]
        ) -> dict[str, Fetched]:
            self.calls.append(
                [s.key for s in searches] + [f"+{c.search.key}" for c in continuations]
            )
            return {
                c.search.key: Fetched(c.search.key, (*c.resources, condition("more")))
                for c in continuations
            } | {s.key: Fetched(s.key) for s in searches}

    pager = Pager()
    assert isinstance(pager, PagingSource)
    prefetch = {"patient": PATIENT, "conditions": bundle(condition("c1"), next_url="n")}
    results = run(PrefetchSource(prefetch, pager))
    assert pager.calls == [["procedures", "observations", "reports", "orders", "+conditions"]]
    assert [r["id"] for r in results["conditions"].resources] == ["c1", "more"]


def test_no_fallback_and_key_absent() -> None:
    results = run(PrefetchSource({"patient": PATIENT}, None))
    assert results["patient"].complete
    assert results["conditions"].error == (
        "conditions (Condition search): not prefetched and no FHIR server"
    )
    assert run(PrefetchSource(None, None))["patient"].error == (
        "patient (Patient read): not prefetched and no FHIR server"
    )


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        (
            "patient",
            {"resourceType": "Practitioner", "id": PID},
            "prefetch is Practitioner, expected Patient",
        ),
        ("patient", {"resourceType": "Patient", "id": "other"}, "prefetch is another Patient"),
        ("patient", [PATIENT], "prefetch is an array, expected Patient"),
        ("conditions", condition("c1"), "prefetch unusable: expected a Bundle, got Condition"),
        (
            "conditions",
            {"resourceType": "Bundle", "entry": [{"resource": 3}]},
            "prefetch unusable: malformed Bundle entry 0",
        ),
    ],
)
def test_wrong_shape_asks_the_fallback_or_is_an_error(key: str, value: object, why: str) -> None:
    fallback = Recorder()
    results = run(PrefetchSource(dict(FULL, **{key: value}), fallback))
    assert fallback.calls == [[key]]
    assert results[key].complete
    alone = run(PrefetchSource(dict(FULL, **{key: value}), None))[key]
    assert alone.error is not None
    assert alone.error.endswith(f"({why}; no FHIR server to ask)")


def test_prefetch_bundle_keeps_include_and_skips_outcome_entries() -> None:
    value = bundle(condition("c1"))
    value["type"] = "collection"  # a client may send any Bundle type for a search
    value["entry"] += [  # type: ignore[operator]
        {"resource": PATIENT, "search": {"mode": "include"}},
        {"resource": OUTCOME, "search": {"mode": "outcome"}},
    ]
    result = run(PrefetchSource(dict(FULL, conditions=value), None))["conditions"]
    assert result.complete
    assert [r["id"] for r in result.resources] == ["c1", PID]


def test_file_source_as_fallback() -> None:
    fallback = FileSource([PATIENT, condition("c9")])
    results = run(PrefetchSource({}, fallback))
    assert results["patient"].resources == (PATIENT,)
    assert [r["id"] for r in results["conditions"].resources] == ["c9"]


OTHER = {"resourceType": "Condition", "id": "c-x", "subject": {"reference": "Patient/someone"}}


@pytest.mark.parametrize(
    "value",
    [
        bundle(condition("c1"), OTHER),  # another patient's resource: the template was misfilled
        bundle(
            {"resourceType": "Procedure", "id": "p1", "subject": {"reference": f"Patient/{PID}"}}
        ),
        dict(bundle(condition("c1")), total=3),  # total not reached, no next link
    ],
    ids=["other-patient", "other-type", "total-not-reached"],
)
def test_incomplete_prefetch_is_re_read_from_the_server(value: dict[str, object]) -> None:
    fallback = Recorder()
    results = run(PrefetchSource(dict(FULL, conditions=value), fallback))
    assert fallback.calls == [["conditions"]]
    assert results["conditions"].resources == ({"resourceType": "Basic", "id": "conditions"},)
    assert results["conditions"].complete


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (bundle(condition("c1"), OTHER), "prefetch held 1 resource(s) that do not answer"),
        (dict(bundle(condition("c1")), total=3), "prefetch holds 1 of 3 results, no next link"),
    ],
)
def test_incomplete_prefetch_without_a_server_is_incomplete_not_empty(
    value: dict[str, object], why: str
) -> None:
    result = run(PrefetchSource(dict(FULL, conditions=value), None))["conditions"]
    assert not result.complete
    assert result.problem is Problem.INCOMPLETE
    assert result.error is not None
    assert result.error.startswith("conditions (Condition search): incomplete search result (")
    assert why in result.error


def test_server_not_allowed_is_said_so() -> None:
    source = PrefetchSource({"patient": PATIENT}, None, no_fallback=Problem.NOT_ALLOWED)
    result = run(source)["conditions"]
    assert result.problem is Problem.NOT_ALLOWED
    assert result.error == "conditions (Condition search): server not allowed"
    assert run(PrefetchSource({}, None))["conditions"].error == (
        "conditions (Condition search): not prefetched and no FHIR server"
    )


def test_a_huge_prefetch_search_is_capped_and_incomplete() -> None:
    value = bundle(*(condition(f"c{i}") for i in range(50)))
    result = run(PrefetchSource(dict(FULL, conditions=value), None, max_resources=20))["conditions"]
    assert len(result.resources) == 20
    assert result.truncated
    assert result.problem is Problem.TRUNCATED
    assert not result.complete


def test_the_fallback_keeps_one_deadline_across_rounds(server: respx.MockRouter) -> None:
    """Round 1 asks the server for the order's PractitionerRole, round 2 for the operator: both
    under the one deadline of the call."""

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.6)
        if request.url.path.endswith("/PractitionerRole/role-1"):
            role = {
                "resourceType": "PractitionerRole",
                "id": "role-1",
                "practitioner": {"reference": "Practitioner/op-7"},
            }
            return httpx.Response(200, json=role)
        return httpx.Response(200, json=bundle())

    server.get(path__regex=r".*").mock(side_effect=slow)
    order = {
        "resourceType": "ServiceRequest",
        "id": "o1",
        "subject": {"reference": f"Patient/{PID}"},
        "performer": [{"reference": "PractitionerRole/role-1"}],
    }

    async def go() -> PatientRecord:
        async with httpx.AsyncClient() as client:
            limits = FetchLimits(timeout=5.0, deadline=1.0, retries=0)
            source = PrefetchSource(FULL, FhirRestSource(BASE, client, limits=limits))
            return await read_record(source, RecordRequest(PID, order=order))

    started = time.monotonic()
    record = asyncio.run(go())
    assert time.monotonic() - started <= 1.0 + 0.5
    assert record.operator_id == "op-7"
    assert record.complete("conditions")  # from the prefetch
    assert record.why["operator_procedures"] is Problem.TIMEOUT
