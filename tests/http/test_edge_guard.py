"""EdgeGuard: a large body costs nothing before the token is checked, and nothing past the limit."""

from __future__ import annotations

import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.http.service import FEEDBACK, SERVICE, running
from tests.integration.service_harness import auth

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024
CHUNK = b"x" * (64 * 1024)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def stream(total: int) -> AsyncIterator[bytes]:
    for _ in range(total // len(CHUNK)):
        yield CHUNK  # the same object each time: the test itself holds 64 KiB


async def peak_bytes_of(send: object) -> tuple[httpx.Response, int]:
    tracemalloc.start()
    try:
        response = await send  # type: ignore[misc]
        return response, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


async def test_unauthenticated_100_mib_body_is_refused_before_it_is_read(tmp_path: Path) -> None:
    async with running(tmp_path) as (_, client):
        sent = client.post(SERVICE, content=stream(100 * MIB))
        response, peak = await peak_bytes_of(sent)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert peak < 10 * MIB


async def test_declared_length_over_the_limit_is_413_without_reading(tmp_path: Path) -> None:
    async with running(tmp_path) as (_, client):
        headers = {**auth(SERVICE), "Content-Length": str(100 * MIB)}
        sent = client.post(SERVICE, content=stream(100 * MIB), headers=headers)
        response, peak = await peak_bytes_of(sent)
    assert response.status_code == 413
    issue = response.json()["issue"][0]
    assert issue["code"] == "too-costly"
    assert "CTO_CDS_MAX_BODY_BYTES" in issue["diagnostics"]
    assert peak < 10 * MIB


async def test_authenticated_chunked_body_is_cut_off_at_the_limit(tmp_path: Path) -> None:
    async with running(tmp_path, max_body_bytes=1 * MIB) as (_, client):
        sent = client.post(SERVICE, content=stream(100 * MIB), headers=auth(SERVICE))
        response, peak = await peak_bytes_of(sent)
    assert response.status_code == 413
    assert response.json()["resourceType"] == "OperationOutcome"
    assert peak < 10 * MIB


async def test_every_endpoint_has_the_limit(tmp_path: Path) -> None:
    async with running(tmp_path, max_body_bytes=64 * 1024) as (_, client):
        for path in ("/healthz", "/no-such-route", FEEDBACK):
            response = await client.post(path, content=b"{" * (65 * 1024), headers=auth(path))
            assert response.status_code == 413, path


async def test_a_body_under_the_limit_reaches_the_route_and_the_jti_is_used_once(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as (_, client):
        response = await client.post(FEEDBACK, json={"feedback": []}, headers=auth(FEEDBACK))
    # The guard verified the token; the route's dependency must not check the jti a second time.
    assert response.status_code == 200
    assert response.json() == {"stored": 0, "duplicate": 0, "unknown_card": 0}


@pytest.mark.parametrize("length", [b"12abc", b"-1", b"\xb2"])  # ² is a digit to str.isdigit
async def test_a_bad_content_length_is_400(tmp_path: Path, length: bytes) -> None:
    async with running(tmp_path) as (_, client):
        headers = [(k.encode(), v.encode()) for k, v in auth(FEEDBACK).items()]
        headers.append((b"Content-Length", length))
        response = await client.post(FEEDBACK, content=b"{}", headers=headers)
    assert response.status_code == 400
