"""Failures of the write: refusals, 5xx, timeouts, version conflicts; what is retried (respx faults).

The record comes from the cohort file; only the FHIR server being written to is mocked, to inject
faults a real server will not produce on demand.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx

from cds.demo.cohort_data import COHORT_NDJSON, load_ndjson
from cds.errors import ContextError, WriteBackError
from cds.mapping.tables import load_tables
from cds.sources.files import FileSource
from cds.sources.record import Fetched, RecordRequest
from cds.sources.searches import Search
from cds.writeback.build import validate_json
from cds.writeback.send import FhirWriter, SaveResult, WriteLimits, save
from tests.writeback.test_build import FINDINGS

BASE = "https://fhir.example.org/r4"
NOW = datetime(2026, 9, 3, 10, 0, tzinfo=UTC)


def capability(transaction: bool) -> dict[str, Any]:
    rest: dict[str, Any] = {
        "mode": "server",
        "resource": [
            {"type": t, "searchParam": [{"name": "identifier", "type": "token"}]}
            for t in ("Observation", "RiskAssessment")
        ],
    }
    if transaction:
        rest["interaction"] = [{"code": "transaction"}]
    return {"resourceType": "CapabilityStatement", "rest": [rest]}


def outcome(text: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "invalid", "diagnostics": text}],
    }


def empty() -> httpx.Response:
    return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset", "entry": []})


@pytest.fixture
def server() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        router.get("/Observation").mock(return_value=empty())
        router.get("/RiskAssessment").mock(return_value=empty())
        yield router


def run_save(
    findings: dict[str, Any] | None = None,
    limits: WriteLimits | None = None,
    source: FileSource | None = None,
) -> SaveResult:
    async def go() -> SaveResult:
        async with httpx.AsyncClient() as client:
            writer = FhirWriter(
                BASE,
                client,
                token="s3cret",
                redact_ids=("pt01",),
                limits=limits or WriteLimits(timeout=0.5, retries=2, backoff=0.0),
            )
            return await save(
                source or FileSource.from_path(COHORT_NDJSON),
                writer,
                load_tables(),
                RecordRequest(patient_id="pt01", order_id="pt01-order"),
                findings or FINDINGS,
                user="Practitioner/op-expert",
                now=NOW,
            )

    return asyncio.run(go())


def test_a_refused_transaction_names_the_entry_and_writes_nothing(
    server: respx.MockRouter,
) -> None:
    server.get("/metadata").mock(return_value=httpx.Response(200, json=capability(True)))
    tx = server.post("/").mock(
        return_value=httpx.Response(
            422, json=outcome("Entry 1: Observation.code invalid for Patient/pt01 (token s3cret)")
        )
    )
    with pytest.raises(WriteBackError) as caught:
        run_save()
    error = caught.value
    assert error.status == 422
    assert "refused, HTTP 422" in str(error)
    assert "(finding calcification)" in str(error)  # entry 1 = the second finding entered
    assert "pt01" not in str(error)  # the patient id is redacted from the server's text
    assert "s3cret" not in str(error)
    assert error.written == ()
    assert tx.call_count == 1


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (httpx.Response(500, json=outcome("database down")), "server error, HTTP 500"),
        (httpx.Response(503), "server error, HTTP 503"),
        (httpx.ReadTimeout("slow"), "did not answer within 0.5 s"),
        (httpx.ConnectError("refused"), "cannot reach the FHIR server"),
    ],
)
def test_a_transaction_is_sent_once_whatever_the_failure(
    server: respx.MockRouter, fault: Any, expected: str
) -> None:
    server.get("/metadata").mock(return_value=httpx.Response(200, json=capability(True)))
    tx = server.post("/").mock(side_effect=[fault, fault, fault])
    with pytest.raises(WriteBackError, match=expected):
        run_save()
    assert tx.call_count == 1  # a transaction POST is not idempotent: never retried


def _created(kind: str, counter: Iterator[int]) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        rid = f"{kind.lower()}-{next(counter)}"
        body = json.loads(request.content)
        return httpx.Response(
            201,
            json={**body, "id": rid, "meta": {"versionId": "1"}},
            headers={"Location": f"{BASE}/{kind}/{rid}/_history/1"},
        )

    return answer


def test_without_transactions_a_failure_lists_what_is_already_written(
    server: respx.MockRouter,
) -> None:
    server.get("/metadata").mock(return_value=httpx.Response(200, json=capability(False)))
    counter = itertools.count(1)
    ok = _created("Observation", counter)
    calls = {"n": 0}

    def third_fails(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 3:
            return httpx.Response(400, json=outcome("bad value"))
        return ok(request)

    server.post("/Observation").mock(side_effect=third_fails)
    with pytest.raises(WriteBackError) as caught:
        run_save()
    error = caught.value
    assert error.written == ("Observation/observation-1", "Observation/observation-2")
    assert "(finding tortuosity): refused, HTTP 400" in str(error)
    assert "already written: Observation/observation-1, Observation/observation-2" in str(error)
    assert "saving again completes the rest" in str(error)
    assert calls["n"] == 3  # a 400 is not retried


def test_conditional_creates_are_retried_and_references_follow_the_new_ids(
    server: respx.MockRouter,
) -> None:
    server.get("/metadata").mock(return_value=httpx.Response(200, json=capability(False)))
    counter = itertools.count(1)
    ok = _created("Observation", counter)
    flaky = iter([httpx.Response(503), httpx.Response(429)])

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.headers["If-None-Exist"].startswith("identifier=")
        fault = next(flaky, None)
        return fault if fault is not None else ok(request)

    observations = server.post("/Observation").mock(side_effect=answer)
    risks = server.post("/RiskAssessment").mock(side_effect=_created("RiskAssessment", counter))
    provenance = server.post("/Provenance").mock(return_value=httpx.Response(201, json={}))
    result = run_save()
    assert result.mode == "sequential"
    assert observations.call_count == 9 + 8 + 2  # two transient failures retried
    assert len(result.created) == 9 + 8 + 1
    sent = json.loads(provenance.calls.last.request.content)
    assert {t["reference"] for t in sent["target"]} == set(result.created)
    risk = json.loads(risks.calls.last.request.content)
    assert risk["basis"][0]["reference"].startswith("Observation/observation-")


def test_a_version_conflict_is_a_clear_error_and_not_retried(server: respx.MockRouter) -> None:
    server.get("/metadata").mock(return_value=httpx.Response(200, json=capability(False)))
    stored = {
        "resourceType": "Observation",
        "id": "held-stump",
        "meta": {"versionId": "4"},
        "identifier": [],
        "extension": [],
    }

    def search(request: httpx.Request) -> httpx.Response:
        # The server holds the stump finding with another value (another digest).
        token = request.url.params["identifier"].split(",")[0]
        system, _, key = token.partition("|")
        body = {
            **stored,
            "identifier": [{"system": system, "value": key}],
            "extension": [{"url": "x/write-back-digest", "valueString": "old"}],
        }
        return httpx.Response(
            200, json={"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": body}]}
        )

    server.get("/Observation").mock(side_effect=search)
    put = server.put("/Observation/held-stump").mock(
        return_value=httpx.Response(412, json=outcome("version mismatch"))
    )
    with pytest.raises(WriteBackError) as caught:
        run_save({"stump": "tapered"})
    assert caught.value.status == 412
    assert "Observation/held-stump (finding stump): version conflict" in str(caught.value)
    assert put.call_count == 1
    assert put.calls.last.request.headers["If-Match"] == 'W/"4"'


def test_a_failed_identifier_search_stops_before_any_write(server: respx.MockRouter) -> None:
    server.get("/metadata").mock(return_value=httpx.Response(200, json=capability(True)))
    server.get("/Observation").mock(return_value=httpx.Response(401, json=outcome("expired")))
    tx = server.post("/").mock(return_value=httpx.Response(200, json={}))
    with pytest.raises(WriteBackError, match="Observation search by identifier: refused, HTTP 401"):
        run_save()
    assert tx.call_count == 0


class _ObservationsFail:
    """The cohort file, except that the Observation search fails (as a timed-out search would)."""

    def __init__(self) -> None:
        self._file = FileSource.from_path(COHORT_NDJSON)

    async def fetch(self, searches: Sequence[Search]) -> dict[str, Fetched]:
        found = await self._file.fetch(searches)
        if "observations" in found:
            found["observations"] = Fetched("observations", error="observations: timed out")
        return found


def test_an_incomplete_record_writes_nothing(server: respx.MockRouter) -> None:
    metadata = server.get("/metadata").mock(return_value=httpx.Response(200, json=capability(True)))

    async def go() -> SaveResult:
        async with httpx.AsyncClient() as client:
            return await save(
                _ObservationsFail(),
                FhirWriter(BASE, client),
                load_tables(),
                RecordRequest(patient_id="pt01", order_id="pt01-order"),
                FINDINGS,
                user=None,
                now=NOW,
            )

    with pytest.raises(WriteBackError, match="could not be read completely, nothing written"):
        asyncio.run(go())
    assert metadata.call_count == 0


def test_an_invalid_resource_is_refused_before_anything_is_sent() -> None:
    from cds.writeback.plan import Step, WritePlan
    from cds.writeback.resource import Planned
    from cds.writeback.send import _validate

    body = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
    bad = Planned("k", "finding stump", "Observation", {**body, "valueInteger": "two"}, "d")
    with pytest.raises(WriteBackError, match=r"Observation \(finding stump\): not valid FHIR R4"):
        _validate(WritePlan((Step("create", bad, None),), None))
    _validate(WritePlan((Step("unchanged", bad, None),), None))  # not sent, so not checked
    good = Planned("k", "finding stump", "Observation", {**body, "valueInteger": 2}, "d")
    _validate(WritePlan((Step("create", good, None),), None))


def _bundle(entries: list[Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "entry": entries}


def _ours(**fields: Any) -> dict[str, Any]:
    """An Observation carrying a write-back identifier, with `fields` as the server garbled them."""
    ident = [{"system": "http://cto-cds.org/fhir/NamingSystem/write-back", "value": "k"}]
    return {"resourceType": "Observation", "id": "1", "identifier": ident, **fields}


MALFORMED_SEARCHES = [
    (httpx.Response(200, content=b"<html>busy</html>"), "not valid JSON"),
    (httpx.Response(200, json=[]), "expected a Bundle"),
    (httpx.Response(200, content=b"null"), "expected a Bundle"),
    (httpx.Response(200, json={"resourceType": "Bundle", "entry": "x"}), "expected a searchset"),
    (httpx.Response(200, json={**_bundle([]), "entry": {"resource": {}}}), "malformed Bundle"),
]


@pytest.mark.parametrize(("answer", "cause"), MALFORMED_SEARCHES)
def test_a_malformed_identifier_search_answer_is_one_line_and_nothing_is_written(
    server: respx.MockRouter, answer: httpx.Response, cause: str
) -> None:
    # Each was a traceback (JSONDecodeError, AttributeError) before anything was written.
    server.get("/metadata").mock(return_value=httpx.Response(200, json=capability(True)))
    server.get("/Observation").mock(return_value=answer)
    tx = server.post("/").mock(return_value=httpx.Response(200, json={}))
    with pytest.raises(WriteBackError, match=f"Observation search by identifier: .*{cause}"):
        run_save()
    assert tx.call_count == 0


@pytest.mark.parametrize(
    "garbled",
    [
        _ours(identifier=None),
        _ours(extension=None),
        _ours(extension=[{"url": None}, {"url": 5}, "x"]),
    ],
)
def test_null_or_mistyped_elements_in_a_held_resource_are_read_as_absent(
    server: respx.MockRouter, garbled: dict[str, Any]
) -> None:
    # `identifier: null`, `extension: null`, an extension `url` not a string: TypeError and
    # AttributeError tracebacks. The resource is not ours (no key matches) and the save goes on.
    server.get("/metadata").mock(return_value=httpx.Response(200, json=capability(True)))
    server.get("/Observation").mock(
        return_value=httpx.Response(200, json=_bundle([{"resource": garbled}]))
    )
    server.post("/").mock(return_value=httpx.Response(200, json={"resourceType": "Bundle"}))
    assert len(run_save().created) == 9 + 8 + 1


@pytest.mark.parametrize("statement", [[], "x", 5])
def test_a_capability_statement_that_is_not_an_object_means_requests_one_by_one(
    server: respx.MockRouter, statement: Any
) -> None:
    server.get("/metadata").mock(return_value=httpx.Response(200, json=statement))
    counter = itertools.count(1)
    server.post("/Observation").mock(side_effect=_created("Observation", counter))
    server.post("/RiskAssessment").mock(side_effect=_created("RiskAssessment", counter))
    server.post("/Provenance").mock(return_value=httpx.Response(201, json={}))
    assert run_save().mode == "sequential"


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, content=b"<html>ok</html>"),
        httpx.Response(200, json=[]),
        httpx.Response(200, json={"entry": "x"}),
        httpx.Response(200, json={"entry": ["x", {"response": "x"}, {"resource": "x"}]}),
        httpx.Response(200, json={"entry": [{"response": {"location": 5}}]}),
    ],
)
def test_a_committed_transaction_with_an_unreadable_answer_is_reported_written(
    server: respx.MockRouter, answer: httpx.Response
) -> None:
    # HTTP 200: the server committed it. Its answer unreadable was a traceback, as if it had failed;
    # now the resources are listed by their planned urn:uuid (saving again finds them unchanged).
    server.get("/metadata").mock(return_value=httpx.Response(200, json=capability(True)))
    server.post("/").mock(return_value=answer)
    result = run_save()
    assert result.mode == "transaction"
    assert len(result.created) == 9 + 8 + 1
    assert all(ref.startswith("urn:uuid:") for ref in result.created)


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(201, headers={"Location": f"{BASE}/Patient/pt01/_history/1"}),
        httpx.Response(201, json={"resourceType": "Observation", "id": "../../Patient/pt01"}),
        httpx.Response(201, json={"resourceType": "Patient", "id": "pt01"}),
    ],
)
def test_an_id_of_another_type_or_malformed_is_never_referenced(
    server: respx.MockRouter, answer: httpx.Response
) -> None:
    # Taken as the finding's id, `Patient/pt01` or `Observation/../../Patient/pt01` went into the
    # scores' derivedFrom and the Provenance target: wrong references written without a word.
    server.get("/metadata").mock(return_value=httpx.Response(200, json=capability(False)))
    server.post("/Observation").mock(return_value=answer)
    provenance = server.post("/Provenance").mock(return_value=httpx.Response(201, json={}))
    with pytest.raises(WriteBackError, match=r"Observation \(finding stump\): .* gave no id"):
        run_save()
    assert provenance.call_count == 0


def test_an_update_answered_without_a_body_or_location_is_the_resource_updated(
    server: respx.MockRouter,
) -> None:
    # A PUT answered `200` alone (Prefer: return=minimal; FHIR asks a Location of a create only)
    # was "the server wrote it but gave no id": exit 2 after a write that happened, the rest unsent.
    server.get("/metadata").mock(return_value=httpx.Response(200, json=capability(False)))

    def search(request: httpx.Request) -> httpx.Response:
        system, _, key = request.url.params["identifier"].split(",")[0].partition("|")
        held = _ours(
            id="held-stump",
            meta={"versionId": "4"},
            identifier=[{"system": system, "value": key}],
            extension=[{"url": "x/write-back-digest", "valueString": "old"}],
        )
        return httpx.Response(200, json=_bundle([{"resource": held}]))

    server.get("/Observation").mock(side_effect=search)
    put = server.put("/Observation/held-stump").mock(return_value=httpx.Response(200))
    counter = itertools.count(1)
    server.post("/Observation").mock(side_effect=_created("Observation", counter))
    server.post("/RiskAssessment").mock(side_effect=_created("RiskAssessment", counter))
    provenance = server.post("/Provenance").mock(return_value=httpx.Response(201, json={}))
    result = run_save({"stump": "tapered"})
    assert result.updated == ["Observation/held-stump"]
    assert put.call_count == 1
    sent = json.loads(provenance.calls.last.request.content)
    assert {"reference": "Observation/held-stump"} in sent["target"]


class _PagedServer:
    """A FHIR server that pages search results 10 at a time (its cap, whatever `_count` asks) and
    honours transactions with conditional creates, as HAPI-like servers do."""

    PAGE = 10

    def __init__(self, router: respx.MockRouter) -> None:
        self.held: dict[str, dict[str, Any]] = {}  # "Type/id" -> resource
        self.ids = itertools.count(1)
        router.get("/metadata").mock(return_value=httpx.Response(200, json=capability(True)))
        router.get("/Observation").mock(side_effect=self.search)
        router.get("/RiskAssessment").mock(side_effect=self.search)
        router.get("/Provenance").mock(side_effect=self.search)
        router.post("/").mock(side_effect=self.transaction)

    @staticmethod
    def _key(resource: dict[str, Any]) -> str:
        if resource["resourceType"] == "Provenance":  # no identifier: its save's tag
            return str(resource["meta"]["tag"][0]["code"])
        return str(resource["identifier"][0]["value"])

    def search(self, request: httpx.Request) -> httpx.Response:
        kind = request.url.path.rsplit("/", 1)[1]
        tokens = request.url.params.get("identifier") or request.url.params["_tag"]
        keys = {t.partition("|")[2] for t in tokens.split(",")}
        hits = [r for ref, r in self.held.items() if ref.startswith(kind) and self._key(r) in keys]
        page = int(request.url.params.get("page", "0"))
        body = _bundle([{"resource": r} for r in hits[page * self.PAGE : (page + 1) * self.PAGE]])
        if len(hits) > (page + 1) * self.PAGE:
            url = request.url.copy_merge_params({"page": str(page + 1)})
            body["link"] = [{"relation": "next", "url": str(url)}]
        return httpx.Response(200, json=body)

    def transaction(self, request: httpx.Request) -> httpx.Response:
        answers = []
        for entry in json.loads(request.content)["entry"]:
            resource, how = entry["resource"], entry["request"]
            if how["method"] == "PUT":
                self.held[how["url"]] = resource
                answers.append({"response": {"status": "200", "location": how["url"]}})
                continue
            kind = how["url"]
            same = [ref for ref, r in self.held.items() if ref.startswith(kind)]
            if "identifier" in resource and any(
                self._key(self.held[ref]) == self._key(resource) for ref in same
            ):
                answers.append({"response": {"status": "200"}})  # If-None-Exist matched
                continue
            ref = f"{kind}/{next(self.ids)}"
            self.held[ref] = {**resource, "id": ref.split("/")[1]}
            answers.append({"response": {"status": "201", "location": ref}})
        return httpx.Response(200, json={"resourceType": "Bundle", "entry": answers})


def test_what_the_server_holds_is_read_past_its_first_page() -> None:
    # A server capping pages below the 17 Observations of a save: the held ones on page 2 were
    # planned as creates, their If-None-Exist matched, and a changed score was never written.
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        server = _PagedServer(router)
        first = run_save()
        assert len(first.created) == 9 + 8 + 1
        again = run_save()
        assert again.mode == "nothing to write"
        changed = run_save({**FINDINGS, "occlusion_length_mm": 12.0})
    assert len(changed.updated) > 1  # the finding and the scores it moves
    assert not changed.created
    lengths = [
        r["valueQuantity"]["value"]
        for r in server.held.values()
        if r.get("code", {}).get("text") == "occlusion_length_mm"
    ]
    assert lengths == [12.0]


def _without_operator() -> FileSource:
    """The cohort with pt01's order naming no operator: experience unknown, Operator-CTO 0-4."""
    resources = load_ndjson(COHORT_NDJSON)
    order = next(r for r in resources if r["id"] == "pt01-order")
    del order["performer"]
    entries = [{"resource": r} for r in resources]
    return FileSource.from_bundle(
        {"resourceType": "Bundle", "type": "collection", "entry": entries}
    )


def test_an_estimate_saved_before_is_withdrawn_when_the_band_is_no_longer_known() -> None:
    # The RiskAssessment with its probability stayed the order's current estimate when a later
    # save found no band: a stale clinical claim. Now it is updated in place to say there is none.
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        server = _PagedServer(router)
        run_save()
        (risk_ref,) = [ref for ref in server.held if ref.startswith("RiskAssessment/")]
        assert "prediction" in server.held[risk_ref]
        unknown = run_save(source=_without_operator())
        again = run_save(source=_without_operator())
        never = _PagedServer(router)  # a fresh server: no estimate ever saved
        first_unknown = run_save(source=_without_operator())
    assert risk_ref in unknown.updated
    assert unknown.labels[risk_ref] == "risk operator_cto"
    withdrawn = server.held[risk_ref]
    assert "prediction" not in withdrawn
    assert withdrawn["status"] == "amended"
    assert withdrawn["note"][0]["text"].startswith(
        "the inputs no longer give an Operator-CTO band: no estimate (Operator-CTO is 0 to 4"
    )
    operator = next(
        ref for ref, r in server.held.items() if r.get("code", {}).get("text") == "Operator-CTO"
    )
    assert withdrawn["basis"] == [{"reference": operator}]
    assert "valueRange" in server.held[operator]
    validate_json(withdrawn)
    provenance = next(
        r for ref, r in reversed(server.held.items()) if ref.startswith("Provenance/")
    )
    assert {"reference": risk_ref} in provenance["target"]
    assert again.mode == "nothing to write"
    assert risk_ref in again.unchanged
    assert len(first_unknown.created) == 9 + 8  # findings and scores: no RiskAssessment
    assert not [ref for ref in never.held if ref.startswith("RiskAssessment/")]


@pytest.mark.parametrize(
    ("next_url", "cause"),
    [
        ("https://elsewhere.example.org/r4/Observation?page=2", "next link outside the FHIR base"),
        (f"{BASE}/Observation?page=again", "more than 20 pages"),
    ],
)
def test_a_next_link_elsewhere_or_endless_stops_before_any_write(
    server: respx.MockRouter, next_url: str, cause: str
) -> None:
    server.get("/metadata").mock(return_value=httpx.Response(200, json=capability(True)))
    page = {**_bundle([]), "link": [{"relation": "next", "url": next_url}]}
    server.get("/Observation").mock(return_value=httpx.Response(200, json=page))
    tx = server.post("/").mock(return_value=httpx.Response(200, json={}))
    with pytest.raises(WriteBackError, match=cause):
        run_save()
    assert tx.call_count == 0


def _dripping(counter: list[int], chunk: bytes, pause: float) -> httpx.Response:
    async def body() -> AsyncIterator[bytes]:
        yield b'{"resourceType": "Bundle", "type": "searchset", "entry": ['
        for _ in range(200):
            counter[0] += 1
            await asyncio.sleep(pause)
            yield chunk
        yield b"]}"

    return httpx.Response(200, content=body())


def test_an_answer_dripping_slower_than_the_timeout_is_abandoned(
    server: respx.MockRouter,
) -> None:
    # httpx's timeout bounds each read, not the answer: a byte every few seconds kept a save (and
    # the app's Save request) waiting for as long as the server liked. Now the timeout is the whole
    # answer's; the search is retried twice, then one line.
    server.get("/metadata").mock(return_value=httpx.Response(200, json=capability(True)))
    sent = [0]
    server.get("/Observation").mock(side_effect=lambda _: _dripping(sent, b" ", 0.05))
    tx = server.post("/").mock(return_value=httpx.Response(200, json={}))
    with pytest.raises(
        WriteBackError, match=r"Observation search: .* did not answer within 0\.5 s"
    ):
        run_save()
    assert sent[0] < 200  # abandoned, not read to the end
    assert tx.call_count == 0


def test_an_answer_over_the_byte_cap_is_abandoned_while_streaming(
    server: respx.MockRouter,
) -> None:
    # Read whole into memory before: a server answering without end took the process (in the
    # service, the SMART app's Save) down with it.
    server.get("/metadata").mock(return_value=httpx.Response(200, json=capability(True)))
    sent = [0]
    server.get("/Observation").mock(side_effect=lambda _: _dripping(sent, b" " * 100_000, 0))
    tx = server.post("/").mock(return_value=httpx.Response(200, json={}))
    with pytest.raises(
        WriteBackError, match="Observation search: the answer is over 1000000 bytes"
    ):
        run_save(limits=WriteLimits(timeout=5, max_bytes=1_000_000))
    assert sent[0] < 20  # 20 MB if read to the end
    assert tx.call_count == 0


def test_a_declared_length_over_the_byte_cap_is_not_read(server: respx.MockRouter) -> None:
    big = json.dumps(_bundle([])).encode() + b" " * 1000
    server.get("/metadata").mock(return_value=httpx.Response(200, json=capability(True)))
    server.get("/Observation").mock(return_value=httpx.Response(200, content=big))
    with pytest.raises(WriteBackError, match="over 1000 bytes"):
        run_save(limits=WriteLimits(max_bytes=1000))


def test_an_order_of_another_patient_is_refused_before_anything_is_read_or_written(
    server: respx.MockRouter,
) -> None:
    # `--patient pt01 --order ServiceRequest/pt02-order` wrote pt01's findings and scores onto
    # pt02's order (focus, bodySite, operator from it): another patient's chart, without a word.
    metadata = server.get("/metadata").mock(return_value=httpx.Response(200, json=capability(True)))

    async def go() -> SaveResult:
        async with httpx.AsyncClient() as client:
            return await save(
                FileSource.from_path(COHORT_NDJSON),
                FhirWriter(BASE, client),
                load_tables(),
                RecordRequest(patient_id="pt01", order_id="pt02-order"),
                FINDINGS,
                user=None,
                now=NOW,
            )

    # Refused where the order is read (cds/sources/record.py), before its operator is.
    with pytest.raises(ContextError, match=r"pt02-order is an order of 'Patient/pt02', not of "):
        asyncio.run(go())
    assert metadata.call_count == 0


def _held_by_another_save(request: httpx.Request, digest: str | None) -> dict[str, Any]:
    """What the server answers a conditional create that matched: the resource it holds, with
    the content digest of whichever save wrote it (`None`: this save's own)."""
    body = json.loads(request.content)
    held = {**body, "id": "held-1", "meta": {"versionId": "1"}}
    if digest is not None:
        held["extension"] = [{"url": body["extension"][0]["url"], "valueString": digest}]
    return held


def test_a_create_matched_by_another_saves_values_is_not_reported_saved(
    server: respx.MockRouter,
) -> None:
    # Two saves at once with stump blunt and tapered: the second's If-None-Exist matched the
    # first's Observation (200, not 201), nothing of it was written, and both printed "created".
    server.get("/metadata").mock(return_value=httpx.Response(200, json=capability(False)))
    server.post("/Observation").mock(
        side_effect=lambda r: httpx.Response(200, json=_held_by_another_save(r, "other"))
    )
    provenance = server.post("/Provenance").mock(return_value=httpx.Response(201, json={}))
    with pytest.raises(WriteBackError) as caught:
        run_save({"stump": "tapered"})
    assert "Observation (finding stump): the server holds other values" in str(caught.value)
    assert "save again" in str(caught.value)
    assert provenance.call_count == 0


def test_a_retried_create_matching_this_saves_own_values_is_saved(
    server: respx.MockRouter,
) -> None:
    # The first attempt was written but its answer lost: the retry's If-None-Exist finds it.
    server.get("/metadata").mock(return_value=httpx.Response(200, json=capability(False)))
    server.post("/Observation").mock(
        side_effect=lambda r: httpx.Response(200, json=_held_by_another_save(r, None))
    )
    server.post("/RiskAssessment").mock(
        side_effect=lambda r: httpx.Response(200, json=_held_by_another_save(r, None))
    )
    server.post("/Provenance").mock(return_value=httpx.Response(201, json={}))
    assert len(run_save().created) == 9 + 8 + 1


def test_a_transaction_whose_create_matched_other_values_says_so(
    server: respx.MockRouter,
) -> None:
    server.get("/metadata").mock(return_value=httpx.Response(200, json=capability(True)))

    def answer(request: httpx.Request) -> httpx.Response:
        entries = []
        for n, entry in enumerate(json.loads(request.content)["entry"]):
            if n == 0:  # the stump finding: another save's, held already
                held = {**entry["resource"], "id": "held-1"}
                held["extension"] = [{"url": held["extension"][0]["url"], "valueString": "x"}]
                entries.append({"response": {"status": "200 OK"}, "resource": held})
            else:
                entries.append({"response": {"status": "201 Created"}})
        return httpx.Response(200, json={"resourceType": "Bundle", "entry": entries})

    server.post("/").mock(side_effect=answer)
    with pytest.raises(WriteBackError) as caught:
        run_save({"stump": "tapered"})
    assert "Observation (finding stump): the server holds other values" in str(caught.value)


def test_the_save_locks_are_dropped_when_no_save_holds_or_waits_on_them(
    server: respx.MockRouter,
) -> None:
    # One asyncio.Lock per patient's order ever saved stayed in memory for the life of the server.
    from cds.writeback import send

    server.get("/metadata").mock(return_value=httpx.Response(200, json=capability(True)))
    server.post("/").mock(return_value=httpx.Response(200, json={"resourceType": "Bundle"}))
    run_save()
    assert send._locks == {}


def test_a_save_lock_still_serialises_while_one_holds_and_others_wait() -> None:
    from cds.writeback.send import _locks, _serialised

    async def go() -> list[str]:
        order: list[str] = []
        release = asyncio.Event()

        async def first() -> None:
            async with _serialised("k"):
                order.append("first in")
                await release.wait()
                order.append("first out")

        async def second() -> None:
            async with _serialised("k"):
                order.append("second in")

        a = asyncio.create_task(first())
        await asyncio.sleep(0)
        b = asyncio.create_task(second())
        c = asyncio.create_task(second())
        await asyncio.sleep(0)
        assert len(_locks) == 1  # held by one, waited on by two: kept
        c.cancel()  # a waiter cancelled (the request went away) leaves the count right
        await asyncio.sleep(0)
        release.set()
        await asyncio.gather(a, b, c, return_exceptions=True)
        return order

    assert asyncio.run(go()) == ["first in", "first out", "second in"]
    assert _locks == {}


class _SequentialServer(_PagedServer):
    """No transactions: one request per resource; the first `refuse` Provenance POSTs are 403."""

    def __init__(self, router: respx.MockRouter, refuse: int) -> None:
        super().__init__(router)
        self.refuse = refuse
        router.get("/metadata").mock(return_value=httpx.Response(200, json=capability(False)))
        for kind in ("Observation", "RiskAssessment", "Provenance"):
            router.post(f"/{kind}").mock(side_effect=self.create)
        router.put(path__regex=r"/(Observation|RiskAssessment)/").mock(side_effect=self.update)

    def update(self, request: httpx.Request) -> httpx.Response:
        ref = request.url.path.split("/r4/", 1)[1]
        self.held[ref] = json.loads(request.content)
        return httpx.Response(200)

    def create(self, request: httpx.Request) -> httpx.Response:
        resource = json.loads(request.content)
        kind = resource["resourceType"]
        if kind == "Provenance" and self.refuse:
            self.refuse -= 1
            return httpx.Response(403, json=outcome("no Provenance create scope"))
        condition = request.headers["If-None-Exist"].partition("=")[2].partition("|")[2]
        same = [r for ref, r in self.held.items() if ref.startswith(kind)]
        if any(self._key(r) == condition for r in same):
            return httpx.Response(200)
        ref = f"{kind}/{next(self.ids)}"
        self.held[ref] = {**resource, "id": ref.split("/")[1], "meta": resource.get("meta", {})}
        return httpx.Response(201, headers={"Location": f"{BASE}/{ref}/_history/1"})


def test_a_provenance_lost_after_the_writes_is_sent_by_the_next_save() -> None:
    # Sequentially, a Provenance POST failing after the writes: saving again found everything
    # unchanged and wrote nothing, so those versions stayed without provenance. Now the resources
    # name their save, and the next save re-sends its Provenance (then writes nothing again).
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        server = _SequentialServer(router, refuse=1)
        with pytest.raises(WriteBackError, match=r"Provenance: refused, HTTP 403") as caught:
            run_save()
        written = set(caught.value.written)
        assert len(written) == 9 + 8 + 1
        assert not [ref for ref in server.held if ref.startswith("Provenance/")]
        completed = run_save()
        again = run_save()
    assert completed.mode == "sequential"
    (provenance_ref,) = completed.created
    assert completed.labels[provenance_ref].startswith("provenance of an earlier save")
    assert set(completed.unchanged) == written
    provenance = server.held[provenance_ref]
    validate_json(provenance)
    assert {t["reference"] for t in provenance["target"]} == written
    assert provenance["agent"][0]["who"] == {"reference": "Practitioner/op-expert"}
    save_ids = {
        e["valueString"]
        for ref in written
        for e in server.held[ref]["extension"]
        if e["url"].endswith("/write-back-save")
    }
    assert [t["code"] for t in provenance["meta"]["tag"]] == list(save_ids)
    assert again.mode == "nothing to write"
    assert not again.created
    assert [ref for ref in server.held if ref.startswith("Provenance/")] == [provenance_ref]


@pytest.mark.parametrize(("status", "mode"), [(403, "nothing to write"), (500, None)])
def test_a_provenance_search_not_granted_leaves_the_save_as_it_was(status: int, mode: str) -> None:
    # The SMART app asks Provenance create, not read: the check cannot be made, nothing is written
    # (as before). A server error is an error, as for any search.
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        server = _SequentialServer(router, refuse=1)
        with pytest.raises(WriteBackError):
            run_save()
        router.get("/Provenance").mock(return_value=httpx.Response(status, json=outcome("no")))
        if mode is None:
            with pytest.raises(WriteBackError, match=f"Provenance search by save tag: .*{status}"):
                run_save()
        else:
            assert run_save().mode == mode
    assert not [ref for ref in server.held if ref.startswith("Provenance/")]


def test_a_lost_provenance_is_sent_also_by_a_next_save_that_changes_something() -> None:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        server = _SequentialServer(router, refuse=1)
        with pytest.raises(WriteBackError) as caught:
            run_save()
        changed = run_save({**FINDINGS, "occlusion_length_mm": 12.0})
    provenances = [r for ref, r in server.held.items() if ref.startswith("Provenance/")]
    assert len(provenances) == 2  # the lost one (re-sent first), then this save's own
    lost, own = ({t["reference"] for t in p["target"]} for p in provenances)
    assert own == set(changed.updated)
    assert lost == set(caught.value.written) - own  # what the lost save wrote, still current
    assert [r for r in changed.created if r.startswith("Provenance/")] == [
        f"Provenance/{provenances[0]['id']}"
    ]
