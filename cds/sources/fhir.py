"""Reading the record from a FHIR R4 server over REST, within the hook's latency budget.

Why it is built this way:

* A CDS Hooks call has about 2 s (cds-hooks-smart.md, budget; cqf-ruler #526): every planned search is
  sent at once, each request has its own timeout, and the CALL has one deadline: the clock starts at
  the source's first round and every later round (the operator's, a prefetch's continuation) shares
  it. What finished by then is kept; what did not becomes an error naming the search, so the mapping
  keeps the inputs that depend on it unknown instead of reading "nothing found".
* A body is streamed and abandoned past `max_bytes`: a hostile or broken server cannot make the
  service buffer hundreds of megabytes until the timeout.
* A searchset whose `total` is not reached once its pages run out is incomplete, not "all there is".
* A search may carry its own caps (the operator's career: many 1,000-resource pages) and a plainer
  fallback, sent when the server refuses the search with HTTP 400 (a code or date filter, or
  `_elements`, it does not support); the fallback's broader answer is filtered by `record.assemble`.
* Only idempotent GETs are sent, so transient failures (connect errors, read timeouts, 429/502/503/504)
  are retried with exponential backoff, and never past the deadline.
* The bearer token goes to the configured FHIR base only: `next` links are followed only under it
  (CH-12), redirects are not followed, and no other URL is ever built from response content.
* Error texts reach cards and logs: they name the search and the cause, never the URL (it holds the
  patient id) nor the token; an OperationOutcome summary is kept with the request's ids and the token
  redacted.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import parse_qsl, unquote

import httpx
from pydantic import ValidationError

from cds import metrics
from cds.errors import SourceError
from cds.sources.reasons import Problem, reason, status_problem
from cds.sources.record import Fetched
from cds.sources.resources import OperationOutcome
from cds.sources.searches import FILTER_PARAMETERS, Caps, Search
from cds.urls import UrlError, is_under, parse_url

RETRY_STATUSES = frozenset({429, 502, 503, 504})
THREAD_BYTES = 256_000
"""Bodies above this many bytes are parsed in a worker thread, off the event loop."""
SUMMARY_CHARS = 200
_ID_CHARS = r"A-Za-z0-9\-."
_TYPE_NAME = re.compile(r"^[A-Za-z]{1,64}$")
_MALFORMED = object()
_Found = list[Mapping[str, object]]


@dataclass(frozen=True)
class FetchLimits:
    """How long and how much one round may take; the defaults fit a 2-4 s hook budget."""

    timeout: float = 2.0
    """Seconds for one HTTP request, body included."""
    deadline: float = 3.0
    """Seconds for the whole round (all searches, pages and retries)."""
    max_pages: int = 10
    max_resources: int = 1000
    """Per search: beyond either cap the result is kept but marked truncated."""
    max_bytes: int = 8_000_000
    """Per response body: beyond it the search fails as "response too large"."""
    retries: int = 2
    backoff: float = 0.1
    """First retry delay in seconds, doubled each time (a Retry-After header may lengthen it)."""

    def __post_init__(self) -> None:
        caps = (self.max_pages, self.max_resources, self.max_bytes)
        if min(self.timeout, self.deadline) <= 0 or min(caps) < 1:
            raise ValueError("FetchLimits: timeouts must be > 0 and caps >= 1")
        if self.retries < 0 or self.backoff < 0:
            raise ValueError("FetchLimits: retries and backoff must be >= 0")


@dataclass(frozen=True)
class Continuation:
    """A search whose first page(s) were read elsewhere (a prefetch) and whose rest is at `next_url`."""

    search: Search
    next_url: str
    resources: tuple[Mapping[str, object], ...] = ()
    pages: int = 1


class FhirBase:
    """The FHIR base URL, and the test that a URL lies under it (the token may be sent there).

    Parsing and matching are `cds.urls`, the same rules as the service's FHIR allowlist."""

    def __init__(self, url: str) -> None:
        try:
            parsed = parse_url(url)
        except UrlError as exc:
            raise SourceError(f"the FHIR base URL {exc}", url=None) from None
        self._parsed = parsed
        self.scheme = parsed.scheme
        self.host = parsed.host
        self.port = parsed.port
        self.path = parsed.path
        self.url = parsed.url

    def contains(self, url: str) -> bool:
        """Same scheme, host and port, and a path at or under the base path."""
        return is_under(self._parsed, url)


class Page(NamedTuple):
    """One search page: its resources (match and include entries), `next` link and `total`."""

    resources: list[Mapping[str, object]]
    next_url: str | None
    total: int | None
    included: frozenset[int]
    """Indices in `resources` of include entries (they need not answer the search)."""


def read_searchset(body: object, *, require_searchset: bool = True) -> Page:
    """The resources of one search page (match and include entries), its `next` link and `total`.

    Raises ValueError with a short cause (no content quoted) for anything that is not such a page.
    """
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise ValueError(f"expected a Bundle, got {describe(body)}")
    if require_searchset and body.get("type") != "searchset":
        raise ValueError("expected a searchset Bundle")
    entries = body.get("entry", [])
    links = body.get("link", [])
    if not isinstance(entries, list) or not isinstance(links, list):
        raise ValueError("malformed Bundle (entry or link is not a list)")
    resources: list[Mapping[str, object]] = []
    included: set[int] = set()
    for index, entry in enumerate(entries):
        search = entry.get("search") if isinstance(entry, dict) else None
        mode = search.get("mode") if isinstance(search, dict) else None
        if mode == "outcome":  # warnings about the search itself, not record content
            continue
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if mode not in (None, "match", "include") or not isinstance(resource, dict):
            raise ValueError(f"malformed Bundle entry {index}")
        if mode == "include":
            included.add(len(resources))
        resources.append(resource)
    nexts = [x.get("url") for x in links if isinstance(x, dict) and x.get("relation") == "next"]
    if nexts and not (isinstance(nexts[0], str) and nexts[0]):
        raise ValueError("malformed next link")
    total = body.get("total")
    if total is not None and (not isinstance(total, int) or isinstance(total, bool) or total < 0):
        raise ValueError("malformed Bundle.total")
    return Page(resources, nexts[0] if nexts else None, total, frozenset(included))


def describe(body: object) -> str:
    """What a JSON value is, without quoting it: its resourceType if it is a plausible one."""
    if isinstance(body, dict):
        kind = body.get("resourceType")
        return kind if isinstance(kind, str) and _TYPE_NAME.match(kind) else "an object"
    return "an array" if isinstance(body, list) else "a JSON scalar"


def redact(text: str, ids: Iterable[str], token: str | None = None) -> str:
    """Replace the token (anywhere) and each id (as a whole word, so "1" spares "HTTP 1.1") by ***."""
    if token:
        text = text.replace(token, "***")
    for value in sorted({i for i in ids if i}, key=len, reverse=True):
        text = re.sub(rf"(?<![{_ID_CHARS}]){re.escape(value)}(?![{_ID_CHARS}])", "***", text)
    return text


def search_values(search: Search) -> list[str]:
    """The ids in a planned search (patient, practitioner, order): what an error must not echo."""
    path, _, query = search.path.partition("?")
    values = [] if query else [unquote(path.rpartition("/")[2])]
    for name, value in parse_qsl(query):
        if not name.startswith("_") and name not in FILTER_PARAMETERS:
            for part in value.split(","):
                values += [part, part.rpartition("/")[2]]
    return values


def outcome_summary(body: Mapping[str, object], ids: Sequence[str], token: str | None) -> str:
    """An OperationOutcome's issues on one line, cut to SUMMARY_CHARS, ids and token redacted.

    Every string is redacted before the summary is cut, so a cut never leaves half a token.
    """
    try:
        text = OperationOutcome.model_validate(_redacted(body, ids, token)).summary()
    except ValidationError:
        text = "unreadable OperationOutcome"
    return redact(" ".join(text.split()), ids, token)[:SUMMARY_CHARS]


def _redacted(value: object, ids: Sequence[str], token: str | None) -> object:
    if isinstance(value, str):
        return redact(value, ids, token)
    if isinstance(value, list):
        return [_redacted(item, ids, token) for item in value]
    if isinstance(value, dict):
        return {key: _redacted(item, ids, token) for key, item in value.items()}
    return value


class _SearchError(Exception):
    """One search failed; raised inside it, turned into `Fetched.error` and `Fetched.problem`."""

    def __init__(
        self, problem: Problem, detail: str | None = None, status: int | None = None
    ) -> None:
        super().__init__(detail or problem.value)
        self.problem = problem
        self.detail = detail
        self.status = status
        """The HTTP status behind it, when the server answered."""


class FhirRestSource:
    """Answers planned searches from a FHIR R4 REST server (see the module docstring for the why).

    The `httpx.AsyncClient` is injected: the service shares one connection pool, tests pass a mock
    transport. `token` (SMART access token from `fhirAuthorization`) is sent as a bearer token.
    """

    def __init__(
        self,
        base_url: str,
        client: httpx.AsyncClient,
        *,
        token: str | None = None,
        limits: FetchLimits | None = None,
    ) -> None:
        self.base = FhirBase(base_url)
        self.client = client
        self.limits = limits or FetchLimits()
        self._token = token
        self._stop_at: float | None = None
        """The call's deadline on the loop clock, set by the first round (one per call)."""
        self._headers = {"Accept": "application/fhir+json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"

    def __repr__(self) -> str:  # never the token
        return f"FhirRestSource({self.base.url!r}, limits={self.limits!r})"

    async def fetch(self, searches: Sequence[Search]) -> dict[str, Fetched]:
        """Run every search concurrently under one deadline; never raises for a failed search."""
        return await self.fetch_and_continue(searches, ())

    async def fetch_and_continue(
        self, searches: Sequence[Search], continuations: Sequence[Continuation]
    ) -> dict[str, Fetched]:
        """Run `searches` and finish paginated ones (`continuations`) in one concurrent round.

        A continuation's `next_url` gets the same checks as a next link read here (under the base,
        no loop) and its prefetched pages and resources count towards the caps.
        """
        loop = asyncio.get_running_loop()
        if self._stop_at is None:
            self._stop_at = loop.time() + self.limits.deadline
        stop_at = self._stop_at
        jobs = [(s, None) for s in searches] + [(c.search, c) for c in continuations]
        found: list[_Found] = [[] for _ in jobs]
        tasks = [
            asyncio.create_task(self._run(search, stop_at, into, start))
            for (search, start), into in zip(jobs, found, strict=True)
        ]
        try:
            if tasks:
                await asyncio.wait(tasks, timeout=max(stop_at - loop.time(), 0.0))
        finally:
            for task in tasks:
                task.cancel()  # no-op for finished ones
            await asyncio.gather(*tasks, return_exceptions=True)
        results: dict[str, Fetched] = {}
        for (search, _), task, into in zip(jobs, tasks, found, strict=True):
            if task.cancelled():
                problem, cause = Problem.TIMEOUT, f"deadline of {float(self.limits.deadline)} s"
            elif (exc := task.exception()) is not None:  # a bug, not the server: still one search
                problem, cause = Problem.INTERNAL, type(exc).__name__
            else:
                results[search.key] = task.result()
                continue
            error = reason(search, problem, cause)
            results[search.key] = Fetched(search.key, tuple(into), error, problem=problem)
        return results

    async def _run(
        self, search: Search, stop_at: float, into: _Found, start: Continuation | None
    ) -> Fetched:
        """`_search`, timed and counted per resource type (cto_cds_fhir_read_*, cds/metrics.py)."""
        started = time.perf_counter()
        problem: Problem | None = Problem.TIMEOUT  # cancelled at the call's deadline
        try:
            fetched = await self._search(search, stop_at, into, start)
            problem = fetched.problem
            return fetched
        except Exception:
            problem = Problem.INTERNAL
            raise
        finally:
            kind = search.resource_type
            metrics.FHIR_READ_DURATION.labels(kind).observe(time.perf_counter() - started)
            if problem is not None:
                metrics.FHIR_READ_ERRORS.labels(kind, problem.name.lower()).inc()

    async def _search(
        self, search: Search, stop_at: float, into: _Found, start: Continuation | None
    ) -> Fetched:
        """One search to completion; what was read before a failure is kept next to the error."""
        truncated = False
        try:
            if start is not None:
                into.extend(start.resources)
                if not self.base.contains(start.next_url):
                    raise _SearchError(Problem.NOT_ALLOWED, "next link outside the FHIR base")
                truncated = await self._pages(search, start.next_url, start.pages, stop_at, into)
            elif "?" in search.path:
                truncated = await self._first_pages(search, stop_at, into)
            else:
                await self._read(search, stop_at, into)
        except _SearchError as failed:
            error = reason(search, failed.problem, failed.detail)
            return Fetched(search.key, tuple(into), error, problem=failed.problem)
        if truncated:
            return Fetched(search.key, tuple(into), truncated=True, problem=Problem.TRUNCATED)
        return Fetched(search.key, tuple(into), exhaustive=True)

    async def _first_pages(self, search: Search, stop_at: float, into: _Found) -> bool:
        """A search from its first page; refused with HTTP 400, its fallback instead."""
        try:
            return await self._pages(search, self._url(search), 0, stop_at, into)
        except _SearchError as failed:
            if failed.status != 400 or search.fallback is None or into:
                raise
        return await self._pages(search.fallback, self._url(search.fallback), 0, stop_at, into)

    def _caps(self, search: Search) -> Caps:
        limits = self.limits  # no byte cap of its own beyond max_bytes per page
        pages_bytes = limits.max_pages * limits.max_bytes
        return search.caps or Caps(limits.max_resources, limits.max_pages, pages_bytes)

    def _url(self, search: Search) -> str:
        if search.path.startswith("/") or "://" in search.path.partition("?")[0]:
            raise _SearchError(Problem.INTERNAL, "planned path is not relative")
        return f"{self.base.url}/{search.path}"

    async def _read(self, search: Search, stop_at: float, into: _Found) -> None:
        body = await self._body(self._url(search), search, stop_at)
        if not isinstance(body, dict) or body.get("resourceType") != search.resource_type:
            detail = f"expected {search.resource_type}, got {describe(body)}"
            raise _SearchError(Problem.MALFORMED, detail)
        if body.get("id") != unquote(search.path.rpartition("/")[2]):
            raise _SearchError(Problem.MALFORMED, "the server returned a different id")
        into.append(body)

    async def _pages(
        self, search: Search, url: str, pages: int, stop_at: float, into: _Found
    ) -> bool:
        """Read pages from `url` on into `into`; True when a cap cut the result short."""
        caps = self._caps(search)
        visited: set[str] = set()
        capped = len(into) >= caps.resources or pages >= caps.pages
        total: int | None = None
        size = 0
        while not capped:
            visited.add(url)
            body, read = await self._body_sized(url, search, stop_at)
            pages += 1
            size += read
            try:
                resources, next_url, total, _ = read_searchset(body)
            except ValueError as exc:
                raise _SearchError(Problem.MALFORMED, str(exc)) from None
            into.extend(resources)
            if next_url is None:
                break
            if not self.base.contains(next_url):
                raise _SearchError(Problem.NOT_ALLOWED, "next link outside the FHIR base")
            if next_url in visited:
                raise _SearchError(Problem.MALFORMED, "paging loop")
            url = next_url
            capped = len(into) >= caps.resources or pages >= caps.pages or size >= caps.bytes
        if len(into) > caps.resources:
            del into[caps.resources :]
            capped = True
        if not capped and total is not None and total > len(into):
            # The last page says there is more, but links to none: never "that is all".
            detail = f"{len(into)} of {total} results, no next link"
            raise _SearchError(Problem.INCOMPLETE, detail)
        return capped

    async def _body(self, url: str, search: Search, stop_at: float) -> object:
        return (await self._body_sized(url, search, stop_at))[0]

    async def _body_sized(self, url: str, search: Search, stop_at: float) -> tuple[object, int]:
        """The JSON of a 2xx answer and its size in bytes; anything else (status,
        OperationOutcome, bad JSON) fails."""
        status, content = await self._get(url, stop_at)
        try:
            if len(content) > THREAD_BYTES:  # a large page: parse it without stalling other calls
                body: object = await asyncio.to_thread(json.loads, content)
            else:
                body = json.loads(content)
        except (ValueError, RecursionError):
            body = _MALFORMED
        ok = 200 <= status < 300
        if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
            summary = outcome_summary(body, search_values(search), self._token)
            if ok:
                raise _SearchError(Problem.SERVER_ERROR, f"OperationOutcome: {summary}")
            detail = f"{_status_text(status)}: {summary}"
            raise _SearchError(status_problem(status), detail, status)
        if not ok:
            raise _SearchError(status_problem(status), _status_text(status), status)
        if body is _MALFORMED:
            raise _SearchError(Problem.MALFORMED, "malformed JSON")
        return body, len(content)

    async def _get(self, url: str, stop_at: float) -> tuple[int, bytes]:
        """One GET (status, body) with the per-request timeout, body included, and the byte cap;
        transient failures retried with backoff, never past the call's deadline."""
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            delay = self.limits.backoff * 2**attempt
            budget = stop_at - loop.time()
            try:
                async with asyncio.timeout(min(self.limits.timeout, budget)):
                    status, retry_after, content = await self._stream(url)
            except (TimeoutError, httpx.ConnectTimeout, httpx.ReadTimeout):
                if budget <= self.limits.timeout:  # the call's deadline, not this request's
                    deadline = f"deadline of {float(self.limits.deadline)} s"
                    raise _SearchError(Problem.TIMEOUT, deadline) from None
                problem, cause = Problem.TIMEOUT, f"no answer within {float(self.limits.timeout)} s"
            except httpx.ConnectError:
                problem, cause = Problem.UNREACHABLE, "could not connect"
            except httpx.HTTPError as exc:  # pool/write timeout, protocol error: not retried
                raise _SearchError(Problem.SERVER_ERROR, type(exc).__name__) from None
            else:
                if status not in RETRY_STATUSES:
                    return status, content
                problem, cause = status_problem(status), _status_text(status)
                delay = max(delay, retry_after)
            attempt += 1
            if attempt > self.limits.retries or loop.time() + delay >= stop_at:
                raise _SearchError(
                    problem, cause if attempt == 1 else f"{cause}, {attempt} attempts"
                )
            await asyncio.sleep(delay)

    async def _stream(self, url: str) -> tuple[int, float, bytes]:
        """Status, Retry-After and body, reading no more than `max_bytes` of the body."""
        cap = self.limits.max_bytes
        request = self.client.build_request(
            "GET", url, headers=self._headers, timeout=self.limits.timeout
        )
        response = await self.client.send(request, stream=True, follow_redirects=False)
        try:
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > cap:
                raise _SearchError(Problem.TOO_LARGE, f"over {cap} bytes")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > cap:
                    raise _SearchError(Problem.TOO_LARGE, f"over {cap} bytes")
                chunks.append(chunk)
        finally:
            await response.aclose()
        return response.status_code, _retry_after(response), b"".join(chunks)


def _status_text(status: int) -> str:
    if 300 <= status < 400:
        return f"redirect not followed, HTTP {status}"
    return f"HTTP {status}"


def _retry_after(response: httpx.Response) -> float:
    """Retry-After in seconds (the delta form only; a date is ignored)."""
    value = response.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else 0.0
