"""FhirRestSource under injected faults: timeouts, deadline, retries, bad bodies, paging, caps, token.

respx stands in for the network only to inject faults; behaviour against a
real FHIR server belongs to tests/integration.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence

import httpx
import pytest
import respx

from cds.errors import SourceError
from cds.sources.fhir import THREAD_BYTES, FetchLimits, FhirBase, FhirRestSource
from cds.sources.reasons import Problem
from cds.sources.record import Fetched, PatientRecord, RecordRequest, read_record
from cds.sources.searches import Search, operator_searches, patient_searches

BASE = "https://fhir.example.org/r4"
TOKEN = "tok-SECRET-abc123"
PID = "pat-1"
FAST = FetchLimits(timeout=0.5, deadline=2.0, retries=2, backoff=0.01)
KEYS = ["patient", "conditions", "procedures", "observations", "reports", "orders"]


def bundle(*resources: Mapping[str, object], next_url: str | None = None) -> dict[str, object]:
    result: dict[str, object] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources],
    }
    if next_url is not None:
        result["link"] = [{"relation": "self", "url": "x"}, {"relation": "next", "url": next_url}]
    return result


def condition(cid: str) -> dict[str, object]:
    return {"resourceType": "Condition", "id": cid, "subject": {"reference": f"Patient/{PID}"}}


def outcome(text: str) -> dict[str, object]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "processing", "diagnostics": text}],
    }


def fetch(
    searches: Sequence[Search] | None = None,
    limits: FetchLimits = FAST,
    token: str | None = TOKEN,
) -> dict[str, Fetched]:
    async def go() -> dict[str, Fetched]:
        async with httpx.AsyncClient() as client:
            source = FhirRestSource(BASE, client, token=token, limits=limits)
            return await source.fetch(patient_searches(PID) if searches is None else searches)

    return asyncio.run(go())


@pytest.fixture
def server() -> Iterator[respx.MockRouter]:
    """A FHIR server answering every patient search with one page; tests override single routes."""
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


def default_answer(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith(f"/Patient/{PID}"):
        return httpx.Response(200, json={"resourceType": "Patient", "id": PID})
    return httpx.Response(200, json=bundle())


def serve_defaults(router: respx.MockRouter) -> None:
    """One catch-all route added after a test's own, so the test's routes win (respx matches in
    order; a second route with the same pattern would replace the first, hence one catch-all)."""
    router.get(path__regex=r".*").mock(side_effect=default_answer)


class Sleeping:
    """An answer that takes `seconds`; counts requests itself (respx records only answered calls)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.started += 1
        await asyncio.sleep(self.seconds)
        return httpx.Response(200, json=bundle())


def errors(results: Mapping[str, Fetched]) -> dict[str, str]:
    return {key: r.error for key, r in results.items() if r.error is not None}


def test_all_searches_complete_with_bearer_token_and_only_gets(server: respx.MockRouter) -> None:
    serve_defaults(server)
    results = fetch()
    assert sorted(results) == sorted(KEYS)
    assert all(r.complete for r in results.values())
    assert results["patient"].resources == ({"resourceType": "Patient", "id": PID},)
    assert server.calls.call_count == 6
    for call in server.calls:
        assert call.request.method == "GET"
        assert call.request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert call.request.headers["Accept"] == "application/fhir+json"


def test_no_token_sends_no_authorization(server: respx.MockRouter) -> None:
    serve_defaults(server)
    assert all(r.complete for r in fetch(token=None).values())
    assert all("Authorization" not in call.request.headers for call in server.calls)


def test_one_slow_search_times_out_and_the_others_complete(server: respx.MockRouter) -> None:
    slow = Sleeping(5)
    server.get("/Condition").mock(side_effect=slow)
    serve_defaults(server)
    results = fetch(limits=FetchLimits(timeout=0.1, deadline=2.0, retries=1, backoff=0.01))
    assert errors(results) == {
        "conditions": "conditions (Condition search): not read in time (no answer within 0.1 s, 2 attempts)"
    }
    assert slow.started == 2  # a read timeout is retried
    assert all(results[k].complete for k in KEYS if k != "conditions")


def test_overall_deadline_keeps_what_finished(server: respx.MockRouter) -> None:
    server.get("/Procedure").mock(side_effect=Sleeping(30))
    serve_defaults(server)
    started = time.monotonic()
    results = fetch(limits=FetchLimits(timeout=10.0, deadline=0.3))
    assert time.monotonic() - started < 1.5
    assert errors(results) == {
        "procedures": "procedures (Procedure search): not read in time (deadline of 0.3 s)"
    }
    assert all(results[k].complete for k in KEYS if k != "procedures")


def test_default_limits_say_three_seconds() -> None:
    assert FetchLimits() == FetchLimits(2.0, 3.0, 10, 1000, 8_000_000, 2, 0.1)
    with pytest.raises(ValueError, match="caps"):
        FetchLimits(max_pages=0)


def test_5xx_then_success_after_retry(server: respx.MockRouter) -> None:
    route = server.get("/Procedure").mock(
        side_effect=[
            httpx.Response(503),
            httpx.Response(502),
            httpx.Response(200, json=bundle({"resourceType": "Procedure", "id": "x"})),
        ]
    )
    serve_defaults(server)
    results = fetch()
    assert results["procedures"].complete
    assert len(results["procedures"].resources) == 1
    assert route.call_count == 3


def test_5xx_exhausted(server: respx.MockRouter) -> None:
    route = server.get("/Observation").respond(503)
    serve_defaults(server)
    results = fetch()
    assert errors(results) == {
        "observations": "observations (Observation search): server error (HTTP 503, 3 attempts)"
    }
    assert route.call_count == 3


def test_500_is_not_retried(server: respx.MockRouter) -> None:
    route = server.get("/Observation").respond(500)
    serve_defaults(server)
    assert errors(fetch()) == {
        "observations": "observations (Observation search): server error (HTTP 500)"
    }
    assert route.call_count == 1


def test_429_is_retried(server: respx.MockRouter) -> None:
    route = server.get("/DiagnosticReport").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "0"}),
            httpx.Response(200, json=bundle()),
        ]
    )
    serve_defaults(server)
    assert fetch()["reports"].complete
    assert route.call_count == 2


def test_429_with_retry_after_beyond_the_deadline_fails_at_once(server: respx.MockRouter) -> None:
    route = server.get("/DiagnosticReport").respond(429, headers={"Retry-After": "60"})
    serve_defaults(server)
    assert errors(fetch()) == {
        "reports": "reports (DiagnosticReport search): server error (HTTP 429)"
    }
    assert route.call_count == 1


def test_connect_error_is_retried(server: respx.MockRouter) -> None:
    route = server.get("/ServiceRequest").mock(
        side_effect=[httpx.ConnectError("refused"), httpx.Response(200, json=bundle())]
    )
    serve_defaults(server)
    assert fetch()["orders"].complete
    assert route.call_count == 2


def test_malformed_json(server: respx.MockRouter) -> None:
    server.get("/Condition").respond(200, content=b'{"resourceType": "Bundle", ')
    serve_defaults(server)
    assert errors(fetch()) == {
        "conditions": "conditions (Condition search): malformed resource (malformed JSON)"
    }


def test_wrong_shapes(server: respx.MockRouter) -> None:
    server.get(f"/Patient/{PID}").respond(json={"resourceType": "Practitioner", "id": PID})
    server.get("/Condition").respond(json={"resourceType": "Patient", "id": PID})
    server.get("/Procedure").respond(json={"resourceType": "Bundle", "type": "collection"})
    server.get("/Observation").respond(json=[1, 2])
    server.get("/ServiceRequest").respond(
        json={"resourceType": "Bundle", "type": "searchset", "entry": [{}]}
    )
    serve_defaults(server)
    assert errors(fetch()) == {
        "patient": "patient (Patient read): malformed resource (expected Patient, got Practitioner)",
        "conditions": "conditions (Condition search): malformed resource (expected a Bundle, got Patient)",
        "procedures": "procedures (Procedure search): malformed resource (expected a searchset Bundle)",
        "observations": "observations (Observation search): malformed resource (expected a Bundle, got an array)",
        "orders": "orders (ServiceRequest search): malformed resource (malformed Bundle entry 0)",
    }


def test_read_of_another_id_is_an_error(server: respx.MockRouter) -> None:
    server.get(f"/Patient/{PID}").respond(json={"resourceType": "Patient", "id": "someone-else"})
    serve_defaults(server)
    assert errors(fetch()) == {
        "patient": "patient (Patient read): malformed resource (the server returned a different id)"
    }


def test_operation_outcome_body(server: respx.MockRouter) -> None:
    server.get("/Condition").respond(200, json=outcome("search   too\ncostly"))
    server.get("/Procedure").respond(400, json=outcome("unknown parameter"))
    server.get("/Observation").respond(200, json=outcome("x" * 500))
    serve_defaults(server)
    found = errors(fetch())
    assert (
        found["conditions"]
        == "conditions (Condition search): server error (OperationOutcome: search too costly)"
    )
    assert (
        found["procedures"]
        == "procedures (Procedure search): server error (HTTP 400: unknown parameter)"
    )
    prefix = "observations (Observation search): server error (OperationOutcome: "
    assert found["observations"] == prefix + "x" * 200 + ")"


def test_404_on_a_read_is_an_error(server: respx.MockRouter) -> None:
    server.get(f"/Patient/{PID}").respond(404)
    server.get("/Practitioner/op-7").respond(
        404, json=outcome("Resource Practitioner/op-7 is not known")
    )
    server.get("/Procedure").respond(json=bundle())
    server.get("/Observation").respond(json=bundle())
    serve_defaults(server)
    results = fetch([*patient_searches(PID), *operator_searches("op-7")])
    found = errors(results)
    assert found == {
        "patient": "patient (Patient read): not found (HTTP 404)",
        "operator": "operator (Practitioner read): not found (HTTP 404: Resource Practitioner/*** is not known)",
    }


def test_redirect_is_not_followed(server: respx.MockRouter) -> None:
    server.get("/Condition").respond(302, headers={"Location": "https://elsewhere.example.com/x"})
    elsewhere = respx.get("https://elsewhere.example.com/x").respond(json=bundle())
    serve_defaults(server)
    assert errors(fetch()) == {
        "conditions": "conditions (Condition search): server error (redirect not followed, HTTP 302)"
    }
    assert elsewhere.call_count == 0


def test_paging_across_three_pages_keeps_include_entries(server: respx.MockRouter) -> None:
    page2 = f"{BASE}?_getpages=abc&_page=2"
    page3 = f"{BASE}/Condition?patient={PID}&_page=3"
    first = bundle(condition("c1"), next_url=page2)
    first["entry"] += [  # type: ignore[operator]
        {"resource": {"resourceType": "Patient", "id": PID}, "search": {"mode": "include"}},
        {"resource": outcome("slow query"), "search": {"mode": "outcome"}},
    ]
    server.get("/Condition", params={"_page": "3"}).respond(json=bundle(condition("c4")))
    server.get("/Condition").respond(json=first)
    server.get("", params={"_getpages": "abc"}).respond(
        json=bundle(condition("c2"), condition("c3"), next_url=page3)
    )
    serve_defaults(server)
    result = fetch()["conditions"]
    assert result.complete
    ids = [r["id"] for r in result.resources]
    assert ids == ["c1", PID, "c2", "c3", "c4"]


def test_paging_loop_is_an_error(server: respx.MockRouter) -> None:
    page2 = f"{BASE}/Condition?_page=2"
    server.get("/Condition", params={"_page": "2"}).respond(
        json=bundle(condition("c2"), next_url=page2)
    )
    server.get("/Condition").respond(json=bundle(condition("c1"), next_url=page2))
    serve_defaults(server)
    result = fetch()["conditions"]
    assert result.error == "conditions (Condition search): malformed resource (paging loop)"
    assert [r["id"] for r in result.resources] == ["c1", "c2"]  # what was read is kept


@pytest.mark.parametrize(
    "next_url",
    [
        "https://evil.example.com/r4/Condition?_page=2",
        "http://fhir.example.org/r4/Condition?_page=2",
        "https://fhir.example.org:8443/r4/Condition?_page=2",
        "https://fhir.example.org/r4x/Condition?_page=2",
        "https://fhir.example.org/r4/../admin?_page=2",
        "https://user@fhir.example.org/r4/Condition?_page=2",
    ],
)
def test_next_link_outside_the_base_is_never_requested(
    server: respx.MockRouter, next_url: str
) -> None:
    elsewhere = respx.route(params={"_page": "2"}).respond(json=bundle(condition("bad")))
    server.get("/Condition").respond(json=bundle(condition("c1"), next_url=next_url))
    serve_defaults(server)
    result = fetch()["conditions"]
    assert result.error == (
        "conditions (Condition search): server not allowed (next link outside the FHIR base)"
    )
    assert elsewhere.call_count == 0
    assert [r["id"] for r in result.resources] == ["c1"]


def test_base_url_checks() -> None:
    base = FhirBase("https://FHIR.example.org:443/r4/")
    assert base.url == "https://FHIR.example.org:443/r4"
    assert base.contains("https://fhir.example.org/r4?_getpages=1")
    assert base.contains("https://fhir.example.org/r4/Condition?_page=2")
    assert not base.contains("https://fhir.example.org/r4\\@evil.com/")
    assert not base.contains("https://fhir.example.org:99999/r4/")
    for bad in ["ftp://fhir.example.org/r4", "fhir.example.org/r4", "https:///r4"]:
        with pytest.raises(SourceError, match="absolute http"):
            FhirBase(bad)
    with pytest.raises(SourceError, match="query"):
        FhirBase("https://fhir.example.org/r4?tenant=1")


def infinite_pages(request: httpx.Request) -> httpx.Response:
    page = int(request.url.params.get("_page", "1"))
    resources = [condition(f"c{page}a"), condition(f"c{page}b")]
    return httpx.Response(
        200, json=bundle(*resources, next_url=f"{BASE}/Condition?_page={page + 1}")
    )


def test_page_cap_truncates(server: respx.MockRouter) -> None:
    route = server.get("/Condition").mock(side_effect=infinite_pages)
    serve_defaults(server)
    result = fetch(limits=FetchLimits(max_pages=3))["conditions"]
    assert result.truncated
    assert result.error is None
    assert not result.complete
    assert len(result.resources) == 6
    assert route.call_count == 3


def test_resource_cap_truncates(server: respx.MockRouter) -> None:
    route = server.get("/Condition").mock(side_effect=infinite_pages)
    serve_defaults(server)
    result = fetch(limits=FetchLimits(max_resources=3))["conditions"]
    assert result.truncated
    assert [r["id"] for r in result.resources] == ["c1a", "c1b", "c2a"]
    assert route.call_count == 2


def test_exactly_the_cap_on_the_last_page_is_complete(server: respx.MockRouter) -> None:
    server.get("/Condition").respond(json=bundle(condition("a"), condition("b")))
    serve_defaults(server)
    assert fetch(limits=FetchLimits(max_resources=2))["conditions"].complete


def test_token_and_patient_id_never_appear_in_error_texts(server: respx.MockRouter) -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        said = f"bad request {request.url} with {request.headers['Authorization']} for {PID}"
        return httpx.Response(400, json=outcome(said))

    server.get(f"/Patient/{PID}").mock(side_effect=echo)
    server.get("/Condition").mock(side_effect=echo)
    server.get("/Procedure").mock(side_effect=httpx.ConnectError(f"{BASE}/Procedure?patient={PID}"))
    server.get("/Observation").respond(500, text=f"{TOKEN} {PID}")
    server.get("/DiagnosticReport").respond(200, text=f"<html>{TOKEN} {PID}")
    server.get("/ServiceRequest").mock(side_effect=Sleeping(30))
    results = fetch(limits=FetchLimits(timeout=5.0, deadline=0.5, retries=1, backoff=0.01))
    texts = errors(results)
    assert sorted(texts) == sorted(KEYS)
    for text in texts.values():
        assert TOKEN not in text
        assert "SECRET" not in text
        assert PID not in text
    assert texts["patient"].startswith(
        "patient (Patient read): server error (HTTP 400: bad request"
    )
    assert "Bearer ***" in texts["patient"]
    assert TOKEN not in repr(FhirRestSource(BASE, httpx.AsyncClient(), token=TOKEN))


def test_all_patient_searches_are_in_flight_at_once(server: respx.MockRouter) -> None:
    in_flight = 0
    most = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        if request.url.path.endswith(f"/Patient/{PID}"):
            return httpx.Response(200, json={"resourceType": "Patient", "id": PID})
        return httpx.Response(200, json=bundle())

    server.get(path__regex=r".*").mock(side_effect=handler)
    results = fetch()
    assert all(r.complete for r in results.values())
    assert most == len(patient_searches(PID)) == 6


def test_total_beyond_the_entries_without_a_next_link_is_incomplete(
    server: respx.MockRouter,
) -> None:
    server.get("/Condition").respond(json=dict(bundle(condition("c1")), total=2))
    serve_defaults(server)
    result = fetch()["conditions"]
    assert result.problem is Problem.INCOMPLETE
    assert result.error == (
        "conditions (Condition search): incomplete search result (1 of 2 results, no next link)"
    )
    assert [r["id"] for r in result.resources] == ["c1"]


def test_total_reached_is_complete(server: respx.MockRouter) -> None:
    server.get("/Condition").respond(json=dict(bundle(condition("c1")), total=1))
    serve_defaults(server)
    assert fetch()["conditions"].complete


def test_a_body_over_the_byte_cap_is_abandoned_while_streaming(server: respx.MockRouter) -> None:
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"resourceType": "Bundle", "type": "searchset", "entry": ['
        for _ in range(10_000):  # 10 MB if read to the end
            sent += 1
            yield b" " * 1000

    server.get("/Condition").mock(side_effect=lambda _: httpx.Response(200, content=endless()))
    serve_defaults(server)
    result = fetch(limits=FetchLimits(timeout=5, deadline=5, max_bytes=50_000))["conditions"]
    assert result.problem is Problem.TOO_LARGE
    assert result.error == "conditions (Condition search): response too large (over 50000 bytes)"
    assert sent < 100  # stopped soon after the cap, not buffered to the end


def test_a_declared_length_over_the_cap_is_not_read(server: respx.MockRouter) -> None:
    big = json.dumps(bundle(*(condition(f"c{i}") for i in range(200)))).encode()
    server.get("/Condition").respond(200, content=big)
    serve_defaults(server)
    result = fetch(limits=FetchLimits(max_bytes=len(big) - 1))["conditions"]
    assert result.problem is Problem.TOO_LARGE
    assert fetch(limits=FetchLimits(max_bytes=len(big)))["conditions"].complete


def test_every_round_shares_one_deadline(server: respx.MockRouter) -> None:
    """A PractitionerRole performer makes a second round (the operator's): it must not get a
    deadline of its own (a 3 s deadline once answered after 6 s)."""

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.6)
        path = request.url.path
        if path.endswith("/PractitionerRole/role-1"):
            role = {
                "resourceType": "PractitionerRole",
                "id": "role-1",
                "practitioner": {"reference": "Practitioner/op-7"},
            }
            return httpx.Response(200, json=role)
        return default_answer(request)

    server.get(path__regex=r".*").mock(side_effect=slow)
    order = {
        "resourceType": "ServiceRequest",
        "id": "o1",
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{PID}"},
        "performer": [{"reference": "PractitionerRole/role-1"}],
    }

    async def go() -> PatientRecord:
        async with httpx.AsyncClient() as client:
            limits = FetchLimits(timeout=5.0, deadline=1.0, retries=0)
            source = FhirRestSource(BASE, client, limits=limits)
            return await read_record(source, RecordRequest(PID, order=order))

    started = time.monotonic()
    record = asyncio.run(go())
    assert time.monotonic() - started <= 1.0 + 0.5
    assert record.operator_id == "op-7"  # the first round finished in time
    assert record.patient is not None
    assert record.why["operator_procedures"] is Problem.TIMEOUT
    assert record.incomplete["operator_procedures"] == (
        "operator_procedures (Procedure search): not read in time (deadline of 1.0 s)"
    )


def test_a_complete_search_is_exhaustive_and_a_capped_one_is_not(server: respx.MockRouter) -> None:
    server.get("/Condition").respond(json=bundle(condition("c1"), condition("c2")))
    serve_defaults(server)
    assert fetch()["conditions"].exhaustive
    capped = fetch(limits=FetchLimits(max_resources=1))["conditions"]
    assert not capped.exhaustive
    assert capped.problem is Problem.TRUNCATED


def test_a_large_page_is_parsed_the_same(server: respx.MockRouter) -> None:
    """Above THREAD_BYTES the JSON is parsed off the event loop: same resources, same errors."""
    many = [condition(f"c{i}") for i in range(3000)]
    body = json.dumps(bundle(*many)).encode()
    assert len(body) > THREAD_BYTES
    server.get("/Condition").respond(200, content=body)
    server.get("/Procedure").respond(200, content=body[:-1])  # cut: malformed
    serve_defaults(server)
    limits = FetchLimits(max_resources=5000, timeout=5, deadline=5)
    results = fetch(limits=limits)
    assert len(results["conditions"].resources) == 3000
    assert results["conditions"].complete
    assert results["procedures"].problem is Problem.MALFORMED


def test_reads_are_timed_and_failures_counted_per_resource_type(server: respx.MockRouter) -> None:
    from cds.metrics import REGISTRY

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    server.get("/Condition").mock(return_value=httpx.Response(404, json=outcome("gone")))
    server.get("/Procedure").mock(side_effect=Sleeping(30))
    serve_defaults(server)
    kinds = ["Patient", "Condition", "Procedure", "Observation"]
    before = {k: value("cto_cds_fhir_read_duration_seconds_count", resource_type=k) for k in kinds}
    not_found = value(
        "cto_cds_fhir_read_errors_total", resource_type="Condition", problem="not_found"
    )
    late = value("cto_cds_fhir_read_errors_total", resource_type="Procedure", problem="timeout")
    patient_errors = sum(
        value("cto_cds_fhir_read_errors_total", resource_type="Patient", problem=p.name.lower())
        for p in Problem
    )
    results = fetch(limits=FetchLimits(timeout=0.5, deadline=0.5, retries=0, backoff=0.01))
    assert results["conditions"].problem is Problem.NOT_FOUND
    assert results["procedures"].problem is Problem.TIMEOUT
    for kind in kinds:  # every planned search once, failed or not
        now = value("cto_cds_fhir_read_duration_seconds_count", resource_type=kind)
        assert now - before[kind] >= 1, kind
    assert (
        value("cto_cds_fhir_read_errors_total", resource_type="Condition", problem="not_found")
        - not_found
        == 1
    )
    assert (
        value("cto_cds_fhir_read_errors_total", resource_type="Procedure", problem="timeout") - late
        == 1
    )
    assert patient_errors == sum(
        value("cto_cds_fhir_read_errors_total", resource_type="Patient", problem=p.name.lower())
        for p in Problem
    )


def test_a_bug_in_a_search_is_counted_as_internal(
    server: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cds.metrics import REGISTRY

    async def broken(*args: object) -> Fetched:
        raise RuntimeError("a bug")

    monkeypatch.setattr(FhirRestSource, "_search", broken)
    labels = {"resource_type": "Patient", "problem": "internal"}
    before = REGISTRY.get_sample_value("cto_cds_fhir_read_errors_total", labels) or 0.0
    results = fetch(patient_searches(PID)[:1])
    assert results["patient"].problem is Problem.INTERNAL
    after = REGISTRY.get_sample_value("cto_cds_fhir_read_errors_total", labels) or 0.0
    assert after - before == 1
