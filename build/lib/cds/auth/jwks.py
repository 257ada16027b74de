"""Client public keys by `kid`: inline, or fetched from a configured `jwks_url` or allowlisted `jku` (CH-25).

The only module of `cds.auth` that does network I/O, through an injected `httpx.AsyncClient` (tests pass
`transport=httpx.MockTransport(...)`). Keys are looked up *before* the signature is checked, so every
fetch can be triggered by an unauthenticated caller; hence:

- a `jku` is fetched only if the issuer is trusted and the URL is on its `jku_allowlist` (checked again
  here, whatever the caller did); nothing from the token other than `jku` and `kid` is used;
- one GET per URL at a time (a lock), 2 s overall timeout, no redirects, body at most 64 KiB;
- an unknown `kid` triggers at most one refresh per URL per `min_refresh_interval`, and at most
  `fetch_burst` fetches per issuer per `min_refresh_interval` (covers random `jku` paths under a
  broad prefix), so a flood of made-up kids or URLs cannot hammer the client's server;
- cached keys live `ttl` seconds; if a refresh fails the previous keys stay in use (logged);
- at most `max_urls` URLs are cached (least recently used evicted).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import jwt

from cds.auth.keys import KeyRejectedError, parse_jwks
from cds.auth.trust import TrustedClient
from cds.errors import AuthError

logger = logging.getLogger(__name__)


@dataclass
class _Slot:
    """The cached JWKS of one URL."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    keys: dict[str, jwt.PyJWK] = field(default_factory=dict)
    fetched_at: float | None = None
    attempted_at: float | None = None


class _FetchError(Exception):
    """A JWKS download that gave no usable document; the message is for the log."""


class JwksCache:
    """Find a trusted client's public key by `kid` (CH-24, CH-25). One instance per process."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        ttl: float = 300,
        min_refresh_interval: float = 30,
        timeout: float = 2.0,
        max_bytes: int = 64 * 1024,
        max_urls: int = 256,
        fetch_burst: int = 4,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl = ttl
        self._min_interval = min_refresh_interval
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._max_urls = max_urls
        self._burst = fetch_burst
        self._clock = clock
        self._slots: OrderedDict[str, _Slot] = OrderedDict()
        self._windows: dict[str, tuple[float, int]] = {}
        self.fetches = 0
        """Number of HTTP fetches attempted (for tests and metrics)."""

    async def key(self, client: TrustedClient, kid: str, jku: str | None) -> jwt.PyJWK:
        """The key `kid` of `client`: from the token's `jku` (allowlisted), inline `jwks` or `jwks_url`.

        Raises:
            AuthError: `jku_not_allowed`, `missing_jku` (the client is configured for jku only and
                the token has none), `unknown_kid`, or `jwks_unavailable` (never fetched successfully).
        """
        if jku is not None:
            if not client.allows_jku(jku):
                raise AuthError("jku_not_allowed")
            return await self._remote(client.iss, jku, kid)
        if client.jwks is not None:
            key = client.inline_key(kid)
            if key is None:
                raise AuthError("unknown_kid")
            return key
        if client.jwks_url is not None:
            return await self._remote(client.iss, client.jwks_url, kid)
        raise AuthError("missing_jku")

    async def _remote(self, iss: str, url: str, kid: str) -> jwt.PyJWK:
        slot = self._slot(url)
        async with slot.lock:
            fresh = slot.fetched_at is not None and self._clock() - slot.fetched_at < self._ttl
            if (not fresh or kid not in slot.keys) and self._may_fetch(slot, iss):
                await self._refresh(slot, url)
        key = slot.keys.get(kid)
        if key is not None:
            return key
        raise AuthError("unknown_kid" if slot.fetched_at is not None else "jwks_unavailable")

    def _slot(self, url: str) -> _Slot:
        slot = self._slots.get(url)
        if slot is None:
            slot = self._slots[url] = _Slot()
            while len(self._slots) > self._max_urls:
                self._slots.popitem(last=False)
        else:
            self._slots.move_to_end(url)
        return slot

    def _may_fetch(self, slot: _Slot, iss: str) -> bool:
        """Rate limits: per URL (`min_refresh_interval`) and per issuer (`fetch_burst`)."""
        now = self._clock()
        if slot.attempted_at is not None and now - slot.attempted_at < self._min_interval:
            return False
        start, count = self._windows.get(iss, (now, 0))
        if now - start >= self._min_interval:
            start, count = now, 0
        if count >= self._burst:
            logger.warning("JWKS fetch budget exhausted for iss %r", iss)
            return False
        self._windows[iss] = (start, count + 1)
        return True

    async def _refresh(self, slot: _Slot, url: str) -> None:
        slot.attempted_at = self._clock()
        self.fetches += 1
        try:
            slot.keys = await self._download(url)
        except _FetchError as exc:
            logger.warning(
                "JWKS fetch from %r failed: %s; keeping %d cached keys", url, exc, len(slot.keys)
            )
            return
        slot.fetched_at = self._clock()

    async def _download(self, url: str) -> dict[str, jwt.PyJWK]:
        body = bytearray()
        try:
            async with asyncio.timeout(self._timeout):
                async with self._client.stream(
                    "GET",
                    url,
                    headers={"Accept": "application/json"},
                    timeout=self._timeout,
                    follow_redirects=False,
                ) as response:
                    if response.status_code != 200:
                        raise _FetchError(f"HTTP {response.status_code}")
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > self._max_bytes:
                            raise _FetchError(f"response larger than {self._max_bytes} bytes")
        except TimeoutError:
            raise _FetchError(f"no answer within {self._timeout} s") from None
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
            raise _FetchError(type(exc).__name__) from None
        try:
            return parse_jwks(json.loads(body), strict=False)
        except (ValueError, RecursionError) as exc:  # KeyRejectedError is a ValueError
            reason = str(exc) if isinstance(exc, KeyRejectedError) else "not JSON"
            raise _FetchError(reason) from None
