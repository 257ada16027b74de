"""SMART discovery (SM-02): `{iss}/.well-known/smart-configuration`, checked and cached per iss.

Only the JSON document is used (CapabilityStatement discovery is deprecated). A configuration
without `S256` in `code_challenge_methods_supported`, or offering `plain`, is refused: PKCE S256 is
mandatory (SM-03). Endpoints must be absolute https URLs (http only when `iss` itself is http, i.e.
a local test server). Good answers are cached for `ttl` seconds per iss (at most MAX_ENTRIES of
them); failures are not cached, so a fixed server is picked up at the next launch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cds.app.errors import SmartError

WELL_KNOWN = "/.well-known/smart-configuration"
CACHE_SECONDS = 3600.0
# Entries kept at most. The key is the iss as launched, and one allowed server has endless
# spellings (host case, `:443`, `:0443`, a path under the base), each a separate entry for an
# hour: an unauthenticated launch loop grew the cache without bound.
MAX_ENTRIES = 64


class SmartConfiguration(BaseModel):
    """The fields of the SMART configuration this app relies on (SM-02)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    authorization_endpoint: str
    token_endpoint: str
    grant_types_supported: list[str] = Field(default_factory=list)
    code_challenge_methods_supported: list[str] = Field(default_factory=list)
    capabilities: list[str] = Field(default_factory=list)
    scopes_supported: list[str] = Field(default_factory=list)
    token_endpoint_auth_methods_supported: list[str] = Field(default_factory=list)
    issuer: str | None = None
    jwks_uri: str | None = None

    @property
    def v1_only(self) -> bool:
        """SM-04: v1 scopes only when the server advertises permission-v1 and not permission-v2."""
        caps = set(self.capabilities)
        return "permission-v1" in caps and "permission-v2" not in caps


def _failure(iss: str, detail: str) -> SmartError:
    return SmartError(502, "SMART discovery failed", f"{iss}{WELL_KNOWN}: {detail}", relaunch=True)


def _endpoint(iss: str, name: str, url: str) -> None:
    try:
        parts = urlsplit(url)
    except ValueError:  # "Invalid IPv6 URL"
        raise _failure(iss, f"{name} {url!r} is not a URL") from None
    secure = parts.scheme == "https" or (parts.scheme == "http" and iss.startswith("http://"))
    if not secure or not parts.netloc:
        raise _failure(iss, f"{name} {url!r} is not an absolute https URL")


def check(iss: str, raw: object) -> SmartConfiguration:
    """The configuration, or a SmartError naming the missing or unacceptable field."""
    if not isinstance(raw, dict):
        raise _failure(iss, "the answer is not a JSON object")
    try:
        config = SmartConfiguration.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise _failure(iss, f"{field}: {first['msg']}") from None
    methods = config.code_challenge_methods_supported
    if "S256" not in methods or "plain" in methods:
        raise _failure(
            iss, f"code_challenge_methods_supported is {methods!r}: S256 required, never plain"
        )
    if "authorization_code" not in config.grant_types_supported:
        raise _failure(
            iss,
            f"grant_types_supported is {config.grant_types_supported!r}: "
            "authorization_code required",
        )
    _endpoint(iss, "authorization_endpoint", config.authorization_endpoint)
    _endpoint(iss, "token_endpoint", config.token_endpoint)
    if config.jwks_uri is not None:
        _endpoint(iss, "jwks_uri", config.jwks_uri)
    return config


class DiscoveryCache:
    """Per-iss configuration cache; the caller has already checked iss against the allowlist."""

    def __init__(
        self, ttl: float = CACHE_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[str, tuple[float, SmartConfiguration]] = {}

    async def get(self, http: httpx.AsyncClient, iss: str) -> SmartConfiguration:
        now = self._clock()
        cached = self._entries.get(iss)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            response = await http.get(iss + WELL_KNOWN, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise _failure(iss, f"unreachable ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise _failure(iss, f"HTTP {response.status_code}")
        try:
            raw = response.json()
        except ValueError:
            raise _failure(iss, "the answer is not JSON") from None
        config = check(iss, raw)
        self._keep(iss, (now + self._ttl, config), now)
        return config

    def _keep(self, iss: str, entry: tuple[float, SmartConfiguration], now: float) -> None:
        """Cache `entry`; when full, expired entries go first, then the oldest."""
        self._entries.pop(iss, None)
        if len(self._entries) >= MAX_ENTRIES:
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
        while len(self._entries) >= MAX_ENTRIES:
            del self._entries[next(iter(self._entries))]
        self._entries[iss] = entry
