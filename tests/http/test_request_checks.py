"""Hostile hook requests are 400s naming the field, never a 500, and never reach a FHIR server."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from cds.cdshooks.request import HookRequest
from cds.demo.cohort_data import COHORT_NDJSON, load_ndjson
from cds.errors import ContextError
from cds.http.request_checks import MAX_DEPTH, check_hook_request, check_prefetch
from tests.http.service import FEEDBACK, SERVICE, running
from tests.integration.service_harness import auth, full_prefetch, hook_body

pytestmark = pytest.mark.anyio

ALLOWED = "http://127.0.0.1:9/fhir"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def body() -> dict[str, Any]:
    cohort = load_ndjson(COHORT_NDJSON)
    return hook_body(
        "order-sign", "pt04", cohort, fhir_server=None, prefetch=full_prefetch("pt04", cohort)
    )


def with_changes(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    for key, value in changes.items():
        if key == "patientId":
            changed["context"]["patientId"] = value
        else:
            changed[key] = value
    return changed


BAD = [
    ({"patientId": "pt04\n"}, "context.patientId"),
    ({"patientId": ".."}, "context.patientId"),
    ({"patientId": "pt..04"}, "context.patientId"),
    ({"patientId": "pt\x0004"}, "context.patientId"),
    ({"patientId": "pt\u202e04"}, "context.patientId"),
    ({"fhirServer": ALLOWED + "/../admin"}, "fhirServer"),
    ({"fhirServer": ALLOWED + "/..%2fadmin"}, "fhirServer"),
    ({"fhirServer": ALLOWED + "/%2E%2E"}, "fhirServer"),
    ({"fhirServer": ALLOWED + "%5Cx"}, "fhirServer"),
    ({"fhirServer": ALLOWED + "?x=1"}, "fhirServer"),
    ({"fhirServer": ALLOWED + "#x"}, "fhirServer"),
    ({"fhirServer": ALLOWED + "/ x"}, "fhirServer"),
    ({"hookInstance": "abc\x00def"}, "hookInstance"),
]


@pytest.mark.parametrize(("changes", "field"), BAD, ids=[repr(c) for c, _ in BAD])
async def test_bad_input_is_400_naming_the_field(
    tmp_path: Path, body: dict[str, Any], changes: dict[str, Any], field: str
) -> None:
    async with running(tmp_path, fhir_base=ALLOWED) as (_, client):
        response = await client.post(
            SERVICE, json=with_changes(body, **changes), headers=auth(SERVICE)
        )
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == [field]


def nested_outcome(levels: int) -> str:
    opening = '{"resourceType": "OperationOutcome", "issue": [{"severity": "error", "details": '
    return opening * levels + "{}" + "}]}" * levels


@pytest.mark.parametrize("levels", [40, 500])
async def test_deeply_nested_prefetch_is_400(
    tmp_path: Path, body: dict[str, Any], levels: int
) -> None:
    raw = json.dumps(with_changes(body, prefetch={"conditions": "@"}))
    raw = raw.replace('"@"', nested_outcome(levels))
    async with running(tmp_path) as (_, client):
        headers = {**auth(SERVICE), "Content-Type": "application/json"}
        response = await client.post(SERVICE, content=raw.encode(), headers=headers)
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


def test_depth_check_counts_every_container(body: dict[str, Any]) -> None:
    nested: Any = {}
    for _ in range(MAX_DEPTH - 1):
        nested = {"a": nested}
    check_prefetch(HookRequest.model_validate(with_changes(body, prefetch=nested)))
    with pytest.raises(ContextError) as refused:
        check_prefetch(HookRequest.model_validate(with_changes(body, prefetch={"x": nested})))
    assert refused.value.loc == "prefetch"
    context = {**body["context"], "extra": nested["a"]}  # the context is a level itself
    check_hook_request(HookRequest.model_validate(with_changes(body, context=context)))
    context = {**body["context"], "extra": nested}
    with pytest.raises(ContextError) as refused:
        check_hook_request(HookRequest.model_validate(with_changes(body, context=context)))
    assert refused.value.loc == "context"


async def test_a_prefetch_that_is_not_read_is_not_walked(
    tmp_path: Path, body: dict[str, Any]
) -> None:
    """A non-CTO order answers no card without reading the prefetch, however deep it nests; the
    same prefetch with the CTO-PCI order is refused (test_deeply_nested_prefetch_is_400)."""
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    other = {
        **order,
        "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "93458"}]},
    }
    context = {
        **body["context"],
        "draftOrders": {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": other}],
        },
    }
    raw = json.dumps(with_changes(body, context=context, prefetch={"conditions": "@"}))
    raw = raw.replace('"@"', nested_outcome(100))
    async with running(tmp_path) as (_, client):
        headers = {**auth(SERVICE), "Content-Type": "application/json"}
        response = await client.post(SERVICE, content=raw.encode(), headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"cards": []}


FEEDBACK_BAD = [
    ({"overrideReason": {"userComment": "x\x00y"}}, "userComment"),
    ({"overrideReason": {"userComment": "x\ud800y"}}, "userComment"),
    ({"card": "c\x00"}, "card"),
    ({"outcomeTimestamp": "9999-12-31T23:30:00-05:00"}, "outcomeTimestamp"),
]


@pytest.mark.parametrize(("changes", "field"), FEEDBACK_BAD, ids=[f for _, f in FEEDBACK_BAD])
async def test_unstorable_feedback_is_400_naming_the_field(
    tmp_path: Path, changes: dict[str, Any], field: str
) -> None:
    item = {
        "card": "c1",
        "outcome": "overridden",
        "overrideReason": {"userComment": "fine"},
        "outcomeTimestamp": "2026-01-01T00:00:00Z",
        **changes,
    }
    # json.dumps keeps a lone surrogate as the escape \ud800, as a hostile client would send it.
    raw = json.dumps({"feedback": [item]}).encode()
    async with running(tmp_path) as (_, client):
        headers = {**auth(FEEDBACK), "Content-Type": "application/json"}
        response = await client.post(FEEDBACK, content=raw, headers=headers)
    assert response.status_code == 400
    assert field in response.json()["issue"][0]["expression"][0]


async def test_feedback_with_an_extension_or_other_unknown_field_is_stored(tmp_path: Path) -> None:
    # CH-02: unknown fields are tolerated and `extension` is an object; the body's other keys were
    # validated as feedback lists, so `{"feedback": [...], "extension": {...}}` was a 400.
    item = {
        "card": "c1",
        "outcome": "overridden",
        "overrideReason": {"userComment": "fine"},
        "outcomeTimestamp": "2026-01-01T00:00:00Z",
    }
    body = {"feedback": [item], "extension": {"org.example.ehr": {"x": 1}}, "other": "y"}
    async with running(tmp_path) as (_, client):
        headers = {**auth(FEEDBACK), "Content-Type": "application/json"}
        response = await client.post(FEEDBACK, json=body, headers=headers)
        missing = await client.post(FEEDBACK, json={"extension": {}}, headers=auth(FEEDBACK))
    assert response.status_code == 200, response.text
    assert response.json() == {"stored": 1, "duplicate": 0, "unknown_card": 1}
    assert missing.status_code == 400
    assert missing.json()["issue"][0]["expression"] == ["feedback"]


@pytest.mark.parametrize("url", [FEEDBACK, SERVICE], ids=["feedback", "hook"])
@pytest.mark.parametrize(
    ("content_type", "named"),
    [
        ("text/plain", "Content-Type is 'text/plain'"),
        (
            "application/x-www-form-urlencoded",
            "Content-Type is 'application/x-www-form-urlencoded'",
        ),
        (None, "no Content-Type header"),
    ],
)
async def test_a_body_without_a_json_content_type_is_400_naming_the_header(
    tmp_path: Path, url: str, content_type: str | None, named: str
) -> None:
    # The body was not read as JSON and the 400 said "Input should be a valid dictionary or object
    # to extract fields from": nothing about the header. Feedback and hook calls say the same.
    raw = json.dumps({"feedback": []}).encode()
    headers = {**auth(url), **({"Content-Type": content_type} if content_type else {})}
    async with running(tmp_path) as (_, client):
        response = await client.post(url, content=raw, headers=headers)
    assert response.status_code == 400
    issue = response.json()["issue"][0]
    assert issue["diagnostics"] == (
        f"the body is not read as JSON: {named}; send Content-Type: application/json"
    )
