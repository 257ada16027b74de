"""orjson at the edges (cds/http/fast_json.py): same values and same errors as the standard
library for every body, NaN answered as null instead of a 500."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from cds.http.fast_json import FastJSONResponse, loads
from tests.http.service import SERVICE, running
from tests.integration.service_harness import auth


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": [1, 2.5, "x", null, true]}',
        b'{"s": "a\\ud800b"}',  # lone surrogate escape: orjson refuses, json reads it
        b'{"f": NaN, "g": -Infinity}',
    ],
)
def test_loads_reads_what_the_standard_library_reads(raw: bytes) -> None:
    got, want = loads(raw), json.loads(raw)
    assert json.dumps(got) == json.dumps(want)


def test_integers_beyond_64_bits_are_read_as_numbers_not_refused() -> None:
    # orjson reads them as floats (FHIR's widest, integer64, fits): never a refusal or a crash.
    assert loads(b'{"n": 123456789012345678901234567890}') == {"n": 1.2345678901234568e29}


@pytest.mark.parametrize("raw", [b'{"hook": ', b"{'a': 1}", b"", b'{"a": 1} x'])
def test_loads_refuses_what_the_standard_library_refuses(raw: bytes) -> None:
    with pytest.raises(json.JSONDecodeError):
        loads(raw)


def test_nan_and_infinity_are_answered_as_null() -> None:
    rendered = FastJSONResponse({"p": math.nan, "q": [math.inf, -math.inf], "r": 0.1}).body
    assert json.loads(bytes(rendered)) == {"p": None, "q": [None, None], "r": 0.1}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"hook": "order-select", ', None),  # not JSON: 400, not a 500
        (b'{"hook": "order-select", "hookInstance": "a\\ud800b", "context": {}}', "hookInstance"),
    ],
)
async def test_bad_bodies_are_still_400(tmp_path: Path, raw: bytes, field: str | None) -> None:
    async with running(tmp_path) as (_, client):
        headers = {**auth(SERVICE), "Content-Type": "application/json"}
        response = await client.post(SERVICE, content=raw, headers=headers)
    assert response.status_code == 400
    issue = response.json()["issue"][0]
    assert issue["code"] == "invalid"
    if field is not None:
        assert field in issue["expression"][0]


def test_nesting_past_orjsons_limit_fails_as_before() -> None:
    # orjson stops at 1024 levels; json.loads then raises RecursionError, answered 400 as before.
    with pytest.raises(RecursionError):
        loads(b"[" * 5000 + b"]" * 5000)
