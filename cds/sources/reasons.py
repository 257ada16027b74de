"""Why a search was not read completely: a small closed set of kinds, worded in one place.

Cards, the CLI and the JSON output show these words to a clinician deciding whether to trust a score,
so the wording must say the true cause: "not read in time" only for a timeout, "server refused" only
for 401/403, and so on. Every source (prefetch, REST, file) picks a `Problem` and adds a short detail;
`reason()` builds the one text format: `<key> (<Type> search|read): <wording>[: <detail>]`.
"""

from __future__ import annotations

from enum import StrEnum

from cds.sources.searches import Search


class Problem(StrEnum):
    """The kind of failure of one search (value = the wording shown on cards)."""

    TIMEOUT = "not read in time"
    NOT_ALLOWED = "server not allowed"
    NO_SERVER = "not prefetched and no FHIR server"
    REFUSED = "server refused"
    NOT_FOUND = "not found"
    SERVER_ERROR = "server error"
    UNREACHABLE = "server unreachable"
    MALFORMED = "malformed resource"
    TOO_LARGE = "response too large"
    TRUNCATED = "more results than allowed"
    INCOMPLETE = "incomplete search result"
    INTERNAL = "internal error"


def reason(search: Search, problem: Problem, detail: str | None = None) -> str:
    """The error text of a failed search: which search, which resource type, what went wrong."""
    kind = "search" if "?" in search.path else "read"
    text = f"{search.key} ({search.resource_type} {kind}): {problem.value}"
    return f"{text} ({detail})" if detail else text


def status_problem(status: int) -> Problem:
    """The kind of an HTTP failure status."""
    if status in (401, 403):
        return Problem.REFUSED
    if status in (404, 410):
        return Problem.NOT_FOUND
    return Problem.SERVER_ERROR
