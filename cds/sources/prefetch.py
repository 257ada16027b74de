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
* Nor is an incomplete one: a searchset holding resources that do not answer the search (another
  patient's: the EHR filled the template wrongly), or whose `total` exceeds its entries with no `next`
  link, is re-read from the server; without one, the search is incomplete and the inputs that depend
  on it stay unknown. A patient WITH a CABG must never read as "prior CABG: not documented".
* Each search keeps at most `max_resources` (as the REST source does), or its own cap when it has
  one (the operator's career, `searches.CAREER_CAPS`, as for the REST source): beyond it the result
  is truncated, hence incomplete, so a huge prefetch costs bounded work.
* A prefetched career may answer a broader template (every Procedure of the performer): only the
  performer must match here; `record.assemble` applies the career's code/date filter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from cds.sources.fhir import Continuation, FetchLimits, describe, outcome_summary, read_searchset
from cds.sources.fhir import search_values as ids_in
from cds.sources.reasons import Problem, reason
from cds.sources.record import Fetched, RecordSource
from cds.sources.searches import Search, answers

NOT_PREFETCHED = "not prefetched"


@runtime_checkable
class PagingSource(Protocol):
    """A fallback that can also finish a paginated prefetch from its next link (`FhirRestSource`)."""

    async def fetch(self, searches: Sequence[Search]) -> dict[str, Fetched]: ...

    async def fetch_and_continue(
        self, searches: Sequence[Search], continuations: Sequence[Continuation]
    ) -> dict[str, Fetched]: ...


_NO_FALLBACK = {
    Problem.NO_SERVER: "no FHIR server to ask",
    Problem.NOT_ALLOWED: "the FHIR server is not allowed",
}


class _Missing:
    """The fallback must run this search; `why` says what was wrong with the prefetch, `problem`
    its kind when there is no fallback to ask."""

    def __init__(self, why: str, problem: Problem) -> None:
        self.why = why
        self.problem = problem


class PrefetchSource:
    """Answers planned searches from the prefetch, and asks `fallback` for the rest in one round."""

    def __init__(
        self,
        prefetch: Mapping[str, object] | None,
        fallback: RecordSource | None = None,
        *,
        no_fallback: Problem = Problem.NO_SERVER,
        max_resources: int = FetchLimits.max_resources,
    ) -> None:
        """`no_fallback` says why there is no `fallback` (no server, or one not allowed)."""
        self.prefetch: Mapping[str, object] = prefetch or {}
        self.fallback = fallback
        self.no_fallback = no_fallback
        self.max_resources = max_resources

    async def fetch(self, searches: Sequence[Search]) -> dict[str, Fetched]:
        """Use what was prefetched; fetch what is missing, failed or paginated concurrently."""
        results: dict[str, Fetched] = {}
        missing: dict[str, tuple[Search, _Missing]] = {}
        continuations: list[Continuation] = []
        for search in searches:
            found = self._lookup(search)
            if isinstance(found, Fetched):
                results[search.key] = found
            elif isinstance(found, _Missing):
                missing[search.key] = (search, found)
            elif isinstance(self.fallback, PagingSource):
                continuations.append(found)
            elif self.fallback is not None:  # cannot page: the fallback runs the whole search
                missing[search.key] = (search, _Missing("prefetch paginated", Problem.TRUNCATED))
            else:
                kept = found.resources[: self._cap(search)]
                results[search.key] = Fetched(
                    search.key, kept, truncated=True, problem=Problem.TRUNCATED
                )
        if missing or continuations:
            results |= await self._ask_fallback(missing, continuations)
        return results

    def _cap(self, search: Search) -> int:
        return search.caps.resources if search.caps is not None else self.max_resources

    def _lookup(self, search: Search) -> Fetched | _Missing | Continuation:
        """What the prefetch holds for `search`, or why it must be fetched."""
        if search.key not in self.prefetch:
            return _Missing(NOT_PREFETCHED, self.no_fallback)
        value = self.prefetch[search.key]
        is_read = "?" not in search.path
        if value is None:
            if is_read:
                error = reason(search, Problem.NOT_FOUND, "prefetch was null")
                return Fetched(search.key, error=error, problem=Problem.NOT_FOUND)
            return Fetched(search.key)
        if isinstance(value, Mapping) and value.get("resourceType") == "OperationOutcome":
            summary = outcome_summary(value, ids_in(search), None)
            return _Missing(f"prefetch was an OperationOutcome: {summary}", Problem.SERVER_ERROR)
        if is_read:
            wanted = search.path.rpartition("/")[2]
            if not isinstance(value, Mapping) or value.get("resourceType") != search.resource_type:
                why = f"prefetch is {describe(value)}, expected {search.resource_type}"
                return _Missing(why, Problem.MALFORMED)
            if value.get("id") != wanted:
                return _Missing(f"prefetch is another {search.resource_type}", Problem.INCOMPLETE)
            return Fetched(search.key, (value,))
        try:
            resources, next_url, total, included = read_searchset(value, require_searchset=False)
        except ValueError as exc:
            return _Missing(f"prefetch unusable: {exc}", Problem.MALFORMED)
        strays = sum(
            1 for i, r in enumerate(resources) if i not in included and not answers(search, r)
        )
        if strays:
            why = f"prefetch held {strays} resource(s) that do not answer the search"
            return _Missing(why, Problem.INCOMPLETE)
        if next_url is None and total is not None and total > len(resources) - len(included):
            why = f"prefetch holds {len(resources)} of {total} results, no next link"
            return _Missing(why, Problem.INCOMPLETE)
        if next_url is None:
            if len(resources) > self._cap(search):
                kept = tuple(resources[: self._cap(search)])
                return Fetched(search.key, kept, truncated=True, problem=Problem.TRUNCATED)
            return Fetched(search.key, tuple(resources))
        return Continuation(search, next_url, tuple(resources))

    async def _ask_fallback(
        self, missing: Mapping[str, tuple[Search, _Missing]], continuations: Sequence[Continuation]
    ) -> dict[str, Fetched]:
        """One call to the fallback for every missing search and every unfinished pagination."""
        searches = [search for search, _ in missing.values()]
        wanted = searches + [c.search for c in continuations]
        if self.fallback is None:
            return {s.key: self._unanswered(s, gap) for s, gap in missing.values()}
        if continuations and isinstance(self.fallback, PagingSource):
            answers = await self.fallback.fetch_and_continue(searches, continuations)
        else:
            answers = await self.fallback.fetch(searches)
        results: dict[str, Fetched] = {}
        for search in wanted:
            answer = answers.get(search.key)
            why = missing[search.key][1].why if search.key in missing else NOT_PREFETCHED
            if answer is None:
                error = reason(search, Problem.INTERNAL, "the FHIR server source gave no answer")
                answer = Fetched(search.key, error=error, problem=Problem.INTERNAL)
            if answer.error is not None and why != NOT_PREFETCHED:
                answer = Fetched(
                    search.key,
                    answer.resources,
                    f"{answer.error}; {why}",
                    answer.truncated,
                    answer.problem,
                )
            results[search.key] = answer
        return results

    def _unanswered(self, search: Search, gap: _Missing) -> Fetched:
        """A search the prefetch did not answer and no server can: why, in the closed wording."""
        if gap.why == NOT_PREFETCHED:
            error = reason(search, gap.problem)
        else:
            error = reason(search, gap.problem, f"{gap.why}; {_NO_FALLBACK[self.no_fallback]}")
        return Fetched(search.key, error=error, problem=gap.problem)
