"""SMART discovery checks and the per-iss cache (SM-02)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from cds.app.discovery import DiscoveryCache, check
from cds.app.errors import SmartError
from tests.app.conftest import ISS, SMART_CONFIG

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"code_challenge_methods_supported": ["plain"]}, "S256 required"),
        ({"token_endpoint": None}, "token_endpoint"),
        ({"grant_types_supported": ["client_credentials"]}, "authorization_code required"),
        ({"token_endpoint": "http://as.example/token"}, "not an absolute https URL"),
        ({"authorization_endpoint": "/authorize"}, "not an absolute https URL"),
        ({"authorization_endpoint": "https://[::1/authorize"}, "is not a URL"),  # a 500 before
    ],
)
def test_refused(change: dict[str, Any], says: str) -> None:
    raw = {k: v for k, v in (SMART_CONFIG | change).items() if v is not None}
    with pytest.raises(SmartError, match=says):
        check(ISS, raw)


def test_http_endpoints_only_for_an_http_iss() -> None:
    raw = SMART_CONFIG | {"token_endpoint": "http://127.0.0.1:9/token"}
    assert check("http://127.0.0.1:8/fhir", raw).token_endpoint.startswith("http://")
    with pytest.raises(SmartError):
        check(ISS, "not an object")


async def test_cache_per_iss_with_expiry() -> None:
    now = [0.0]
    cache = DiscoveryCache(ttl=60, clock=lambda: now[0])
    with respx.mock as mock:
        route = mock.get(ISS + "/.well-known/smart-configuration").respond(200, json=SMART_CONFIG)
        async with httpx.AsyncClient() as http:
            await cache.get(http, ISS)
            await cache.get(http, ISS)
            assert route.call_count == 1
            now[0] = 61
            await cache.get(http, ISS)
            assert route.call_count == 2
            route.side_effect = httpx.ConnectError("down")
            now[0] = 200
            with pytest.raises(SmartError, match="unreachable"):
                await cache.get(http, ISS)
