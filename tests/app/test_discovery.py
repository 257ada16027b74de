"""SMART discovery checks and the per-iss cache (SM-02)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from fastapi.testclient import TestClient

from cds.app.discovery import DiscoveryCache, check
from cds.app.errors import SmartError
from cds.main import create_app
from tests.app.conftest import BASE, ISS, SMART_CONFIG, settings

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


def test_the_cache_is_bounded_whatever_spellings_of_an_allowed_iss_are_launched(
    tmp_path: Path,
) -> None:
    # Each spelling of the allowed host (case) was its own entry for an hour: an unauthenticated
    # launch loop grew the cache without bound.
    letters = "ehrexample"  # ehr.example: 2**10 spellings
    spellings = []
    for mask in range(128):
        spelled = "".join(c.upper() if mask >> i & 1 else c for i, c in enumerate(letters))
        spellings.append(f"https://{spelled[:3]}.{spelled[3:]}/fhir")
    assert len(set(spellings)) == len(spellings)
    with respx.mock(assert_all_called=False) as mock:
        route = mock.get(ISS + "/.well-known/smart-configuration").respond(200, json=SMART_CONFIG)
        app = create_app(settings(tmp_path))
        with TestClient(app, base_url=BASE, follow_redirects=False) as client:
            for iss in spellings:
                response = client.get("/app/launch", params={"iss": iss, "launch": "l"})
                assert response.status_code == 302, iss
            cache: DiscoveryCache = app.state.smart.discovery
            assert len(cache._entries) == 64  # MAX_ENTRIES
            client.get("/app/launch", params={"iss": spellings[-1], "launch": "l"})
    assert route.call_count == len(spellings)  # the latest spelling is still cached
