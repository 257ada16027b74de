"""The record from the CDS Hooks prefetch, and from the FHIR server for whatever it lacks.

Why it is built this way (cds-hooks-smart.md CH-12, CH-13):

* A client may honour none, some or all prefetch keys, so each planned search is looked up under its
  own key (hooks/ templates use the `Search` keys) and everything missing is asked of the fallback
  (the FHIR server) in ONE `fetch` call: one concurrent round under one deadline, not one per key.
* The four shapes a prefetch value can take mean different things: absent (not attempted or failed:
  ask the server), `null` (ran, no data: an empty search result, or a read that found nothing), an
  OperationOutcome (failed: ask the server), a Bundle with a `next` link (paginated: the rest is read
  from the server, within the same base-URL check and caps as any next link).
* A value of the wrong shape is not trusted: it is treated like a failed prefetch, and when there is
  no server to ask, the search carries the reason instead of silently reading as "nothing found".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from cds.sources.fhir import Continuation, describe, outcome_summary, read_searchset, reason
from cds.sources.fhir import search_values as ids_in
from cds.sources.record import Fetched, RecordSource
from cds.sources.searches import Search

NOT_PREFETCHED = "not prefetched"


@runtime_checkable
class PagingSource(Protocol):
    """A fallback that can also finish a paginated prefetch from its next link (`FhirRestSource`)."""

    async def fetch(self, searches: Sequence[Search]) -> dict[str, Fetched]: ...

    async def fetch_and_continue(
        self, searches: Sequence[Search], continuations: Sequence[Continuation]
    ) -> dict[str, Fetched]: ...


class _Missing:
    """The fallback must run this search; `why` says what was wrong with the prefetch."""

    def __init__(self, why: str) -> None:
        self.why = why


class PrefetchSource:
    """Answers planned searches from the prefetch, and asks `fallback` for the rest in one round."""

    def __init__(
        self, prefetch: Mapping[str, object] | None, fallback: RecordSource | None = None
    ) -> None:
        self.prefetch: Mapping[str, object] = prefetch or {}
        self.fallback = fallback

    async def fetch(self, searches: Sequence[Search]) -> dict[str, Fetched]:
        """Use what was prefetched; fetch what is missing, failed or paginated concurrently."""
        results: dict[str, Fetched] = {}
        missing: dict[str, tuple[Search, str]] = {}
        continuations: list[Continuation] = []
        for search in searches:
            found = self._lookup(search)
            if isinstance(found, Fetched):
                results[search.key] = found
            elif isinstance(found, _Missing):
                missing[search.key] = (search, found.why)
            elif isinstance(self.fallback, PagingSource):
                continuations.append(found)
            elif self.fallback is not None:  # cannot page: the fallback runs the whole search
                missing[search.key] = (search, "prefetch paginated")
            else:
                results[search.key] = Fetched(search.key, found.resources, truncated=True)
        if missing or continuations:
            results |= await self._ask_fallback(missing, continuations)
        return results

    def _lookup(self, search: Search) -> Fetched | _Missing | Continuation:
        """What the prefetch holds for `search`, or why it must be fetched."""
        if search.key not in self.prefetch:
            return _Missing(NOT_PREFETCHED)
        value = self.prefetch[search.key]
        is_read = "?" not in search.path
        if value is None:
            if is_read:
                return Fetched(search.key, error=reason(search, "prefetch was null (not found)"))
            return Fetched(search.key)
        if isinstance(value, Mapping) and value.get("resourceType") == "OperationOutcome":
            summary = outcome_summary(value, ids_in(search), None)
            return _Missing(f"prefetch was an OperationOutcome: {summary}")
        if is_read:
            wanted = search.path.rpartition("/")[2]
            if not isinstance(value, Mapping) or value.get("resourceType") != search.resource_type:
                return _Missing(f"prefetch is {describe(value)}, expected {search.resource_type}")
            if value.get("id") != wanted:
                return _Missing(f"prefetch is another {search.resource_type}")
            return Fetched(search.key, (value,))
        try:
            resources, next_url = read_searchset(value, require_searchset=False)
        except ValueError as exc:
            return _Missing(f"prefetch unusable: {exc}")
        if next_url is None:
            return Fetched(search.key, tuple(resources))
        return Continuation(search, next_url, tuple(resources))

    async def _ask_fallback(
        self, missing: Mapping[str, tuple[Search, str]], continuations: Sequence[Continuation]
    ) -> dict[str, Fetched]:
        """One call to the fallback for every missing search and every unfinished pagination."""
        searches = [search for search, _ in missing.values()]
        wanted = searches + [c.search for c in continuations]
        if self.fallback is None:
            return {
                s.key: Fetched(s.key, error=reason(s, _no_server(why)))
                for s, why in missing.values()
            }
        if continuations and isinstance(self.fallback, PagingSource):
            answers = await self.fallback.fetch_and_continue(searches, continuations)
        else:
            answers = await self.fallback.fetch(searches)
        results: dict[str, Fetched] = {}
        for search in wanted:
            answer = answers.get(search.key)
            why = missing[search.key][1] if search.key in missing else NOT_PREFETCHED
            if answer is None:
                answer = Fetched(search.key, error=reason(search, "the FHIR server gave no answer"))
            if answer.error is not None and why != NOT_PREFETCHED:
                answer = Fetched(
                    search.key, answer.resources, f"{answer.error} ({why})", answer.truncated
                )
            results[search.key] = answer
        return results


def _no_server(why: str) -> str:
    if why == NOT_PREFETCHED:
        return f"{NOT_PREFETCHED} and no FHIR server"
    return f"{why} (no FHIR server to ask)"
