"""The FHIR searches that make up a patient's record for scoring, planned in one place.

Every source answers the same `Search` list: the REST source sends them, the prefetch source looks
them up among the prefetched keys (hooks/ templates use the same keys), the file source evaluates them
in memory. Keys are stable names; paths are relative FHIR URLs.

The operator's career (`operator_procedures`) is the one search that can be large: a 20-year,
high-volume operator has thousands of Procedures. It is bounded on the server (performer, a date
before the order, the CTO-PCI codes of the mapping tables, `_elements`-trimmed, 1,000 a page) and has
its own caps; a server that refuses it (HTTP 400) is asked the plain performer search instead. Its
code/date filter is re-applied to whatever any source returns (`within`), so a server that ignored
a parameter, a prefetch filled from a broader template and a file all give the mapping the same
history. docs/performance.md, "Operator history".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import parse_qsl, quote, unquote

from cds.sources.resources import DATETIME_PATTERN, earliest_day, points_to

# FHIR id: 1–64 of [A-Za-z0-9-.] (http://hl7.org/fhir/R4/datatypes.html#id).
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")

PAGE_SIZE = 100
CAREER_PAGE_SIZE = 1000
"""A page of the career search: the most sekmet 0.1.1 returns at once (its MAX_COUNT); a server
with a lower maximum returns smaller pages and next links, read within the career caps."""
CAREER_ELEMENTS = "code,status,performer,outcome,performed,performedDateTime,performedPeriod"
"""What the mapping reads of a career Procedure. `performedDateTime`/`performedPeriod` are named
besides `performed`: sekmet 0.1.1 matches `_elements` on JSON keys and drops performed[x] otherwise."""
SUBSETTED = "SUBSETTED"
"""meta.tag code (v3-ObservationValue) of a resource the server trimmed (`_elements`, `_summary`)."""
_HISTORY_NEEDS = ("code", "status", "performer")
_PERFORMED = ("performedDateTime", "performedPeriod")
FILTER_PARAMETERS = frozenset({"code", "date"})
"""Parameters that narrow a search by content, re-applied locally by `within` (not references)."""


@dataclass(frozen=True)
class Caps:
    """How much one search may read: resources, pages, and bytes over all its pages."""

    resources: int
    pages: int
    bytes: int


CAREER_CAPS = Caps(resources=12_000, pages=120, bytes=16_000_000)
"""The career search: 12,000 CTO-PCIs is 600 a year for 20 years, ten times the volume the
Operator-CTO score already counts as high (≥ 60 a year, docs/spec/scores.md §1); beyond it the
history is truncated, hence unknown. 120 pages of 100 is what the HTTP 400 fallback needs for as
many; 16 MB holds 12,000 whole (untrimmed) Procedures with room to spare: the bench's are ~0.8 kB
each (bench/bench_operator_history.py)."""


@dataclass(frozen=True)
class HistoryFilter:
    """What narrows the operator's career search: CTO-PCI codes (`(system, code)`, empty = any
    code) and an exclusive upper date bound (None = any date)."""

    codes: tuple[tuple[str, str], ...] = ()
    before: date | None = None


class Search(NamedTuple):
    """One read or search: `key` names what it is for, `path` is relative to the FHIR base.

    A NamedTuple, not a frozen dataclass: ~10 planned per batch order (0.9 against 1.5 µs to
    build)."""

    key: str
    path: str
    resource_type: str
    caps: Caps | None = None
    """Own caps instead of the source's defaults (the career search)."""
    fallback: Search | None = None
    """The plainer search to send when the server refuses this one with HTTP 400."""


def valid_id(value: str) -> bool:
    """FHIR's id rule, less ids made of dots only: `Patient/..` is a path segment that an HTTP
    client collapses (`..` reads the server's base), never a resource."""
    return bool(_ID.fullmatch(value)) and value.strip(".") != ""


def _id(value: str, what: str) -> str:
    if not valid_id(value):
        raise ValueError(f"{what} {value!r} is not a FHIR id")
    return quote(value, safe="")


def patient_searches(patient_id: str) -> list[Search]:
    """Searches for the patient's own record: demographics, history, findings, orders."""
    pid = _id(patient_id, "patient id")
    return [
        Search("patient", f"Patient/{pid}", "Patient"),
        Search("conditions", f"Condition?patient={pid}&_count={PAGE_SIZE}", "Condition"),
        Search("procedures", f"Procedure?patient={pid}&_count={PAGE_SIZE}", "Procedure"),
        Search("observations", f"Observation?patient={pid}&_count={PAGE_SIZE}", "Observation"),
        Search("reports", f"DiagnosticReport?patient={pid}&_count={PAGE_SIZE}", "DiagnosticReport"),
        Search("orders", f"ServiceRequest?patient={pid}&_count={PAGE_SIZE}", "ServiceRequest"),
    ]


def _escape(value: str) -> str:
    """A FHIR search value with its separators escaped (http://hl7.org/fhir/R4/search.html#escaping)."""
    for char in "\\,|$":
        value = value.replace(char, "\\" + char)
    return value


def split_unescaped(value: str, separator: str) -> list[str]:
    """Split a FHIR search value on `separator` where it is not escaped; escapes are kept, so a
    part can be split again on another separator (`unescape` the last level)."""
    parts: list[str] = []
    start = 0
    index = 0
    while index < len(value):
        if value[index] == "\\":
            index += 2
            continue
        if value[index] == separator:
            parts.append(value[start:index])
            start = index + 1
        index += 1
    parts.append(value[start:])
    return parts


def unescape(value: str) -> str:
    """A FHIR search value part with its `\\` escapes removed."""
    return re.sub(r"\\(.)", r"\1", value)


@lru_cache(maxsize=8)
def _code_tokens(codes: tuple[tuple[str, str], ...]) -> str:
    """The `code` parameter for these codes, escaped and quoted; the same for every order of a
    run (batch scoring builds one career search per order)."""
    tokens = ",".join(f"{_escape(system)}|{_escape(code)}" for system, code in codes)
    return quote(tokens, safe="")


def career_search(practitioner_id: str, history: HistoryFilter = HistoryFilter()) -> Search:
    """The operator's CTO-PCI career as performer, bounded as `history` says, with the plain
    performer search as its fallback."""
    ref = f"Practitioner/{_id(practitioner_id, 'practitioner id')}"
    query = f"performer={ref}"
    if history.before is not None:
        query += f"&date=lt{history.before.isoformat()}"
    if history.codes:
        query += f"&code={_code_tokens(history.codes)}"
    query += f"&_elements={CAREER_ELEMENTS}&_count={CAREER_PAGE_SIZE}"
    plain = Search(
        "operator_procedures",
        f"Procedure?performer={ref}&_count={PAGE_SIZE}",
        "Procedure",
        caps=CAREER_CAPS,
    )
    return Search(
        "operator_procedures", f"Procedure?{query}", "Procedure", caps=CAREER_CAPS, fallback=plain
    )


def operator_searches(
    practitioner_id: str, history: HistoryFilter = HistoryFilter()
) -> list[Search]:
    """Searches for the operator: identity, CTO-PCI career as performer, override Observations."""
    oid = _id(practitioner_id, "practitioner id")
    ref = f"Practitioner/{oid}"
    return [
        Search("operator", ref, "Practitioner"),
        career_search(practitioner_id, history),
        Search(
            "operator_observations", f"Observation?focus={ref}&_count={PAGE_SIZE}", "Observation"
        ),
    ]


def order_search(order_id: str) -> Search:
    return Search("order", f"ServiceRequest/{_id(order_id, 'order id')}", "ServiceRequest")


def role_search(role_id: str) -> Search:
    """The order's performer as a PractitionerRole: read it to find the Practitioner."""
    return Search(
        "operator_role", f"PractitionerRole/{_id(role_id, 'role id')}", "PractitionerRole"
    )


def _points_to(reference: object, target: str) -> bool:
    text = reference.get("reference") if isinstance(reference, Mapping) else None
    return isinstance(text, str) and points_to(text, target)


def _references(resource: Mapping[str, object], name: str) -> list[object]:
    """The References a planned search parameter matches on (patient, performer, focus)."""
    if name == "patient":
        return [resource.get("subject"), resource.get("patient")]
    items = resource.get(name)
    if not isinstance(items, list):
        return []
    if name == "performer":
        return [p.get("actor") for p in items if isinstance(p, Mapping)]
    return list(items)


def answers(search: Search, resource: Mapping[str, object]) -> bool:
    """Whether a raw resource answers a planned search: its type, and every reference parameter.

    A prefetch filled by the wrong query (another patient's record) or a server that ignored a
    parameter must not be read as the answer: what it left out would look like "not documented".
    """
    if resource.get("resourceType") != search.resource_type:
        return False
    read_id, targets = _reference_targets(search.path)
    if read_id is not None:
        return resource.get("id") == read_id
    for name, target in targets:
        if not any(_points_to(ref, target) for ref in _references(resource, name)):
            return False
    return True


@lru_cache(maxsize=1024)
def _reference_targets(path: str) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """A read's id, or a search's reference parameters with their targets: parsed once per path
    (a prefetched record asks this of every resource it holds)."""
    path, _, query = path.partition("?")
    if not query:
        return unquote(path.rpartition("/")[2]), ()
    targets = []
    for name, value in parse_qsl(query):
        if name.startswith("_") or name in FILTER_PARAMETERS:
            continue
        targets.append((name, unquote(value) if "/" in value else f"Patient/{unquote(value)}"))
    return None, tuple(targets)


def _subsetted(resource: Mapping[str, object]) -> bool:
    meta = resource.get("meta")
    tags = meta.get("tag") if isinstance(meta, Mapping) else None
    return isinstance(tags, list) and any(
        isinstance(t, Mapping) and t.get("code") == SUBSETTED for t in tags
    )


class _Unreadable:
    """A performed date that is there but names no day (not a string, not FHIR's form, 2019-02-30)."""


_UNREADABLE = _Unreadable()


_DATETIME = re.compile(DATETIME_PATTERN.removeprefix("^").removesuffix("$"))
"""The lean parse's form, as `fullmatch`: a date it will refuse must not be placed by `int`, which
reads `２０１９` or `2019/03/01` as a day (and, after the order, filtered it out silently)."""


def _performed_day(resource: Mapping[str, object]) -> date | _Unreadable | None:
    value = resource.get("performedDateTime")
    if value is None:
        period = resource.get("performedPeriod")
        if period is None:
            return None
        if not isinstance(period, Mapping):
            return _UNREADABLE
        value = period.get("start")
        if value is None:
            return None
    if not isinstance(value, str) or not _DATETIME.fullmatch(value):
        return _UNREADABLE
    try:
        return earliest_day(value)
    except ValueError:
        return _UNREADABLE


def _has_code(resource: Mapping[str, object], tokens: list[str]) -> bool:
    """Whether a coding matches a token. A `code` that is not shaped as FHIR says (a coding that is
    not an object, a system or code that is not a string) passes: the lean parse then reports the
    resource as malformed and the search as incomplete, where dropping it here would silently
    shorten an operator's history (and an object in a set look-up raised TypeError)."""
    concept = resource.get("code")
    if not isinstance(concept, Mapping):
        return True
    codings = concept.get("coding")
    if codings is None:
        return False
    if not isinstance(codings, list):
        return True
    wanted = {tuple(unescape(part) for part in split_unescaped(t, "|")[:2]) for t in tokens}
    for coding in codings:
        if not isinstance(coding, Mapping):
            return True
        system, code = coding.get("system"), coding.get("code")
        if not isinstance(system, str | None) or not isinstance(code, str | None):
            return True
        if (system, code) in wanted:
            return True
    return False


def within(search: Search, resource: Mapping[str, object]) -> bool | None:
    """Whether a raw resource passes the search's content filter (`code` tokens, `date=lt`), as a
    FHIR server evaluates it; None when it cannot be told: the server trimmed (SUBSETTED) an element
    the history needs, so a missing date or code may be the server's doing, not the record's.
    A code or date that is there but unreadable passes, for the lean parse to report the resource
    and the search as incomplete.

    Matching is exact on system and code, as a token search is; the mapping tables' aliases are
    sent as separate tokens (`career_search`).
    """
    query = search.path.partition("?")[2]
    params = [(n, v) for n, v in parse_qsl(query) if n in FILTER_PARAMETERS]
    trimmed = _subsetted(resource)
    tokens = [t for n, v in params if n == "code" for t in split_unescaped(v, ",")]
    if tokens:
        if resource.get("code") is None:
            return None if trimmed else False
        if not _has_code(resource, tokens):
            return False
    if trimmed and any(resource.get(name) is None for name in _HISTORY_NEEDS):
        return None
    day = _performed_day(resource)
    if isinstance(day, _Unreadable):
        # Passed for the lean parse to report, as a malformed code is: filtered out here, the
        # case would vanish and the operator's history be silently one short.
        return True
    if day is None and trimmed and all(resource.get(n) is None for n in _PERFORMED):
        return None
    for name, value in params:
        if name == "date":
            bound = date.fromisoformat(value.removeprefix("lt"))
            if day is None or day >= bound:
                return False
    return True
