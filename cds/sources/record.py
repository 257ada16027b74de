"""The patient's record as the mapping sees it, and the one way every source produces it.

`read_record(source, request)` plans the searches (`searches.py`), asks the source for all of them at
once (one concurrent round; a second only when the operator is known only from the order read in the
first), and assembles lean typed resources. Each search is either complete or carries the reason it is
not (error, timeout, page cap, malformed resource): the mapping then keeps dependent inputs unknown
instead of reading "nothing found" as "not documented". A result holding resources that do not
answer the search (another patient's, another type) is incomplete too: the source did not run the
query asked, so what it left out is unknown; unless the source read everything the server holds for
the query (`Fetched.exhaustive`): then the strays are a superset, filtered out, and reported as
diagnostics only.

The operator's career search carries a content filter (CTO-PCI codes, a date before the order;
`searches.career_search`): `assemble` re-applies it to what every source returned (`within`), so a
server that ignored it, a prefetch from a broader template and a file give the same history; a
resource the server trimmed of what the filter needs makes the search incomplete.

Parsing is linear (set-based de-duplication) and a large round is parsed in a worker thread, so a
6,000-resource prefetch does not stall other calls on the event loop (bench/bench_record.py). A source
may hand over resources it has already parsed into the lean models (`Fetched.parsed`: the batch source
parses an operator's history once for all that operator's patients); they are placed exactly as
parsed JSON would be.
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from cds.errors import ContextError
from cds.sources.reasons import Problem
from cds.sources.resources import (
    VERSIONED,
    Condition,
    DiagnosticReport,
    Observation,
    Patient,
    Practitioner,
    PractitionerRole,
    Procedure,
    Reference,
    Resource,
    ResourceProblem,
    ServiceRequest,
    parse_resource,
    points_to,
    unversioned,
)
from cds.sources.searches import (
    HistoryFilter,
    Search,
    operator_searches,
    order_search,
    patient_searches,
    role_search,
    valid_id,
    within,
)


class Fetched(NamedTuple):
    """What one search returned: resources (JSON objects) or why it could not be read.

    A NamedTuple, not a frozen dataclass: one per search, ~9 per batch order (0.9 against 1.5 µs
    to build)."""

    key: str
    resources: tuple[Mapping[str, object], ...] = ()
    error: str | None = None
    truncated: bool = False
    problem: Problem | None = None
    """The kind of `error` (or TRUNCATED); None when read completely."""
    parsed: tuple[Resource, ...] = ()
    """Results the source has already parsed into the lean models; placed before `resources`, as
    if they came first in it."""
    exhaustive: bool = False
    """Every result the server holds for the query was read (all pages, no cap): results that do
    not answer the search are then a superset to filter (a server that ignores a parameter, as
    sekmet 0.1.1 does Observation?focus), not a sign that matching data was left out."""

    @property
    def complete(self) -> bool:
        return self.error is None and not self.truncated


class RecordSource(Protocol):
    """Answers planned searches. Implementations: prefetch, FHIR REST, Bundle/NDJSON file."""

    async def fetch(self, searches: Sequence[Search]) -> dict[str, Fetched]:
        """Run every search (concurrently where there is I/O); never raise for a failed search."""
        ...


@dataclass(frozen=True)
class RecordRequest:
    """Whose record to read: the patient, the CTO-PCI order (id or resource), the operator."""

    patient_id: str
    order_id: str | None = None
    order: Mapping[str, object] | ServiceRequest | None = None
    """The order's JSON, or its lean model when the source has parsed it already (batch)."""
    operator_id: str | None = None


@dataclass
class PatientRecord:
    patient: Patient | None = None
    order: ServiceRequest | None = None
    conditions: list[Condition] = field(default_factory=list)
    procedures: list[Procedure] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)
    reports: list[DiagnosticReport] = field(default_factory=list)
    orders: list[ServiceRequest] = field(default_factory=list)
    operator: Practitioner | None = None
    operator_roles: list[PractitionerRole] = field(default_factory=list)
    operator_procedures: list[Procedure] = field(default_factory=list)
    operator_observations: list[Observation] = field(default_factory=list)
    operator_id: str | None = None
    patient_id: str | None = None
    ignored: dict[str, int] = field(default_factory=dict)
    """Search key → results the server returned that did not match the search (dropped)."""
    incomplete: dict[str, str] = field(default_factory=dict)
    """Search key → why it was not read completely (absent = read completely)."""
    why: dict[str, Problem] = field(default_factory=dict)
    """Search key → the kind of failure behind `incomplete[key]`."""
    problems: list[ResourceProblem] = field(default_factory=list)
    filtered: dict[str, int] = field(default_factory=dict)
    """Search key → results outside the search's content filter (a broader answer, dropped)."""
    plans: dict[str, Search] = field(default_factory=dict, repr=False)
    """Search key → the planned search whose content filter `assemble` re-applies."""
    _seen: dict[str, set[str]] = field(default_factory=dict, repr=False)
    """Search key → ids already placed (de-duplication in O(1) per resource)."""

    def fail(self, key: str, problem: Problem, text: str) -> None:
        """Mark a search incomplete (the first failure reported for it is kept)."""
        if key not in self.incomplete:
            self.incomplete[key] = text
            self.why[key] = problem

    def complete(self, key: str) -> bool:
        return key not in self.incomplete


# Search key → the record list it fills and the resource type that belongs there.
_LISTS: dict[str, tuple[str, type[Resource]]] = {
    "conditions": ("conditions", Condition),
    "procedures": ("procedures", Procedure),
    "observations": ("observations", Observation),
    "reports": ("reports", DiagnosticReport),
    "orders": ("orders", ServiceRequest),
    "operator_procedures": ("operator_procedures", Procedure),
    "operator_observations": ("operator_observations", Observation),
}


def _performer(order: ServiceRequest | None, kind: str) -> str | None:
    """The id of the order's first performer of this resource type."""
    for performer in order.performer if order else ():
        ref = unversioned(performer.reference or "")  # `Practitioner/d1/_history/2`: d1
        ref_kind, _, rid = ref.rpartition("/")
        if ref_kind.rpartition("/")[2] == kind and valid_id(rid):
            return rid
    return None


def _practitioner_of_role(record: PatientRecord, role_id: str) -> str | None:
    for role in record.operator_roles:
        if role.id == role_id and role.practitioner and role.practitioner.reference:
            kind, _, rid = unversioned(role.practitioner.reference).rpartition("/")
            if kind.rpartition("/")[2] == "Practitioner" and valid_id(rid):
                return rid
    return None


def assemble(fetched: Mapping[str, Fetched], record: PatientRecord | None = None) -> PatientRecord:
    """Turn raw search results into the typed record (pure: no I/O)."""
    record = record or PatientRecord()
    for key, result in fetched.items():
        if result.error is not None:
            record.fail(key, result.problem or Problem.INTERNAL, result.error)
        elif result.truncated:
            record.fail(key, Problem.TRUNCATED, f"{key}: {Problem.TRUNCATED.value} (result cut)")
        dropped = record.ignored.get(key, 0)
        if _shared_history(record, key, result):
            _place_shared(record, key, result.parsed)
        elif key in _LISTS:
            _place_list(record, key, _parsed(record, key, result))
        else:
            resources = _parsed(record, key, result)
            for resource in resources:
                _place(record, key, resource)
        dropped = record.ignored.get(key, 0) - dropped
        if dropped and not result.exhaustive:
            # Results that do not answer the search (another patient's, another type): the
            # source did not run the query we asked, so what it left out is unknown too.
            record.fail(
                key,
                Problem.INCOMPLETE,
                f"{key}: {Problem.INCOMPLETE.value} ({dropped} result(s) did not match the search)",
            )
    return record


def _parsed(record: PatientRecord, key: str, result: Fetched) -> list[Resource]:
    """The result's lean models (those the source parsed first); malformed ones are recorded."""
    resources = list(result.parsed)
    plan = record.plans.get(key)
    for raw in result.resources:
        # `parsed` ones (a batch export's whole resources) skip it: the mapping re-checks both.
        if plan is not None and not _passes(record, plan, raw):
            continue
        parsed = parse_resource(raw)
        if isinstance(parsed, ResourceProblem):
            record.problems.append(parsed)
            record.fail(key, Problem.MALFORMED, f"{key}: {Problem.MALFORMED.value}: {parsed}")
        elif parsed is not None:
            resources.append(parsed)
    return resources


def _passes(record: PatientRecord, plan: Search, raw: Mapping[str, object]) -> bool:
    """Whether a raw result passes its search's content filter; a trimmed one that cannot be told
    makes the search incomplete (never a history silently short of its undated cases)."""
    verdict = within(plan, raw)
    if verdict is None:
        record.fail(
            plan.key,
            Problem.INCOMPLETE,
            f"{plan.key}: {Problem.INCOMPLETE.value} (the server trimmed a date, code, status or"
            " performer the history needs)",
        )
        return False
    if not verdict:
        record.filtered[plan.key] = record.filtered.get(plan.key, 0) + 1
    return verdict


def _refers(ref: Reference | None, target: str, tail: str) -> bool:
    """`ref` points to `target` ("Patient/p1"), relative or absolute (`tail` = "/" + target), at
    any version of it."""
    if ref is None or ref.reference is None:
        return False
    text = ref.reference
    return text == target or text.endswith(tail) or (VERSIONED in text and points_to(text, target))


def _belongs(record: PatientRecord, key: str) -> Callable[[Resource], bool]:
    """Whether a search result really answers the search: a server that ignores a parameter
    (sekmet 0.1.1 ignores Observation?focus) must not put other people's data in the record.
    Built once per search: an operator's history is hundreds of resources."""
    if key.startswith("operator_"):
        who = f"Practitioner/{record.operator_id}"
        tail = f"/{who}"

        def operators(resource: Resource) -> bool:
            # Plain loops, inlined: this runs for every resource of the history.
            if isinstance(resource, Procedure):
                for performer in resource.performer:
                    actor = performer.actor
                    ref = actor.reference if actor is not None else None
                    if ref is not None and (
                        ref == who
                        or ref.endswith(tail)
                        or (VERSIONED in ref and points_to(ref, who))  # the same practitioner
                    ):
                        return True
            elif isinstance(resource, Observation):
                for focus in resource.focus:
                    if _refers(focus, who, tail):
                        return True
            return False

        return operators
    if record.patient_id is None:
        return lambda resource: True
    target = f"Patient/{record.patient_id}"
    tail = f"/{target}"
    return lambda resource: _refers(getattr(resource, "subject", None), target, tail)


_PATIENT_REF = re.compile(r"(?:^|/)Patient/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]*)?$")


def _check_order_patient(record: PatientRecord, order_id: str) -> None:
    """ContextError when the order read by id names another patient: its target vessel and
    operator would be scored against this patient's record (the hook checks its own order the
    same way: cds/http/hook_call.py). Only a visible mismatch: a urn:uuid subject is left."""
    subject = record.order.subject if record.order is not None else None
    ref = subject.reference if subject is not None else None
    match = _PATIENT_REF.search(ref) if ref else None
    if match and record.patient_id is not None and match[1] != record.patient_id:
        raise ContextError(
            "order",
            f"ServiceRequest/{order_id} is an order of {ref!r}, not of "
            f"Patient/{record.patient_id}: not the same patient",
        )


def _place_list(record: PatientRecord, key: str, resources: list[Resource]) -> None:
    """Add what answers the search to its list, once per id; count what does not (`ignored`)."""
    attr, kind = _LISTS[key]
    target: list[Resource] = getattr(record, attr)
    belongs = _belongs(record, key)
    seen = record._seen.get(key)
    ignored = 0
    for resource in resources:
        if not isinstance(resource, kind) or not belongs(resource):
            ignored += 1
            continue
        rid = resource.id
        if rid is None:
            target.append(resource)
            continue
        if seen is None:
            seen = record._seen[key] = set()
        if rid not in seen:
            seen.add(rid)
            target.append(resource)
    if ignored:
        record.ignored[key] = record.ignored.get(key, 0) + ignored


@dataclass(frozen=True)
class _Placed:
    """What `_place_list` made of one parsed operator history for one operator."""

    parsed: tuple[Resource, ...]
    operator_id: str | None
    placed: tuple[Resource, ...]
    seen: frozenset[str] | None
    ignored: int


_SHARED: OrderedDict[tuple[str, int], _Placed] = OrderedDict()
_SHARED_SIZE = 32


def _shared_history(record: PatientRecord, key: str, result: Fetched) -> bool:
    """An operator search answered wholly with parsed resources (the batch source hands every
    patient of an operator the same parsed history), into a record that holds none yet."""
    return (
        key.startswith("operator_")
        and key in _LISTS
        and bool(result.parsed)
        and not result.resources
        and key not in record._seen
        and key not in record.ignored
        and not getattr(record, _LISTS[key][0])
    )


def _place_shared(record: PatientRecord, key: str, parsed: tuple[Resource, ...]) -> None:
    """`_place_list` for a shared history, computed once per (history, operator) and copied: the
    same parsed tuple placed for the same operator into an empty list always gives the same list,
    so a batch run does not re-check hundreds of Procedures for every order."""
    entry = _SHARED.get((key, id(parsed)))
    if entry is None or entry.parsed is not parsed or entry.operator_id != record.operator_id:
        fresh = PatientRecord(operator_id=record.operator_id, patient_id=record.patient_id)
        _place_list(fresh, key, list(parsed))
        seen = fresh._seen.get(key)
        entry = _Placed(
            parsed,
            record.operator_id,
            tuple(getattr(fresh, _LISTS[key][0])),
            None if seen is None else frozenset(seen),
            fresh.ignored.get(key, 0),
        )
        _SHARED[(key, id(parsed))] = entry  # holds `parsed`: its id is not reused meanwhile
        if len(_SHARED) > _SHARED_SIZE:
            _SHARED.popitem(last=False)
    _SHARED.move_to_end((key, id(parsed)))
    getattr(record, _LISTS[key][0]).extend(entry.placed)
    if entry.seen is not None:
        record._seen[key] = set(entry.seen)
    if entry.ignored:
        record.ignored[key] = entry.ignored


def _place(record: PatientRecord, key: str, resource: Resource) -> None:
    if isinstance(resource, Patient) and key == "patient":
        record.patient = resource
    elif isinstance(resource, ServiceRequest) and key == "order":
        record.order = resource
    elif isinstance(resource, Practitioner) and key == "operator":
        record.operator = resource
    elif isinstance(resource, PractitionerRole) and key == "operator_role":
        record.operator_roles.append(resource)


OrderChooser = Callable[[PatientRecord], ServiceRequest | None]
HistoryPlanner = Callable[[ServiceRequest | None], HistoryFilter]
"""The career search's filter for the order (None: not known yet); from the mapping tables."""

THREAD_ABOVE = 300
"""Resources to parse in one round above which parsing moves off the event loop."""


async def _assemble(fetched: Mapping[str, Fetched], record: PatientRecord) -> None:
    if sum(len(f.resources) for f in fetched.values()) > THREAD_ABOVE:
        await asyncio.to_thread(assemble, fetched, record)
    else:
        assemble(fetched, record)


def _operator_searches(
    record: PatientRecord,
    operator_id: str,
    order: ServiceRequest | None,
    plan: HistoryPlanner | None,
) -> list[Search]:
    searches = operator_searches(operator_id, plan(order) if plan else HistoryFilter())
    record.plans |= {s.key: s for s in searches if s.caps is not None}
    return searches


async def read_record(
    source: RecordSource,
    request: RecordRequest,
    choose_order: OrderChooser | None = None,
    history: HistoryPlanner | None = None,
) -> PatientRecord:
    """Read the record for scoring: one concurrent round, a second only for a late-known operator.

    `history` bounds the operator's career search by the order (its codes and date); without it
    the career is read unfiltered (still trimmed and under its own caps)."""
    searches = patient_searches(request.patient_id)
    record = PatientRecord(operator_id=request.operator_id, patient_id=request.patient_id)
    if isinstance(request.order, ServiceRequest):
        record.order = request.order
    elif request.order is not None:
        parsed = parse_resource(dict(request.order))
        if isinstance(parsed, ServiceRequest):
            record.order = parsed
        elif isinstance(parsed, ResourceProblem):
            record.problems.append(parsed)
    elif request.order_id is not None:
        searches.append(order_search(request.order_id))
    record.operator_id = record.operator_id or _performer(record.order, "Practitioner")
    role_id = _performer(record.order, "PractitionerRole")
    if record.operator_id is not None:
        searches += _operator_searches(record, record.operator_id, record.order, history)
    elif role_id is not None:
        searches.append(role_search(role_id))
    await _assemble(await source.fetch(searches), record)
    if request.order is None and request.order_id is not None:
        _check_order_patient(record, request.order_id)  # before its operator is read
    order = record.order
    if order is None and choose_order is not None:
        # No order named: the caller picks one among the patient's orders (the mapping knows
        # which codes mark a CTO-PCI, and picks the same one again, saying why); its performer
        # is the operator.
        order = choose_order(record)
    if record.operator_id is None:
        role_id = _performer(order, "PractitionerRole")
        record.operator_id = _performer(order, "Practitioner")
        if record.operator_id is None and role_id is not None:
            if "operator_role" not in record.incomplete and not record.operator_roles:
                await _assemble(await source.fetch([role_search(role_id)]), record)
            record.operator_id = _practitioner_of_role(record, role_id)
        if record.operator_id is not None:
            operator = _operator_searches(record, record.operator_id, order, history)
            await _assemble(await source.fetch(operator), record)
    return record
