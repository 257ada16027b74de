"""The record source of a batch run: one patient's resources from the spool, answered as searches.

It answers the same planned searches (`cds/sources/searches.py`) as the prefetch, REST and file
sources, so `read_record` and the mapping see exactly what they would see from a FHIR server. An
operator's history is the same for every patient that operator treats: it is read from the spool and
parsed into the lean models once, and kept in a small LRU cache (a handful of operators, so memory
stays bounded); a patient's own resources are parsed once however many orders the patient has,
straight from the spooled JSON text (`parse_resource_json`; no dict is built for them). The parsed
resources go to `read_record` as `Fetched.parsed`; one that does not parse is handed on as its JSON
(`Fetched.resources`), so `assemble` reports it, or skips a type the mapping does not read, exactly
as for any other source.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from cds.batch.spool import Spool, loads
from cds.sources.record import Fetched
from cds.sources.resources import Resource, parse_resource, parse_resource_json
from cds.sources.searches import Search

_PATIENT_LISTS = {
    "conditions": "Condition",
    "procedures": "Procedure",
    "observations": "Observation",
    "reports": "DiagnosticReport",
    "orders": "ServiceRequest",
}
_OPERATOR_CACHE = 16


@dataclass(frozen=True)
class Parsed:
    """Resources read once: the lean models of those that parse, the JSON of the others."""

    items: tuple[Resource | Mapping[str, object], ...] = ()
    """Each resource, parsed or not, in the export's order."""
    models: tuple[Resource, ...] = ()
    raw: tuple[Mapping[str, object], ...] = ()

    @classmethod
    def of(cls, resources: Iterable[Mapping[str, object]]) -> Parsed:
        return cls._split(_model_or_json(resource) for resource in resources)

    @classmethod
    def of_json(cls, rows: Iterable[tuple[str, str]]) -> Parsed:
        """From (resourceType, JSON text) rows: the models are read from the text, and a dict only
        for a resource without a model or that does not parse (the same items as `of`)."""
        return cls._split(_read(kind, text) for kind, text in rows)

    @classmethod
    def _split(cls, read: Iterable[Resource | Mapping[str, object]]) -> Parsed:
        items = tuple(read)
        models = tuple(item for item in items if isinstance(item, Resource))
        raw = tuple(item for item in items if not isinstance(item, Resource))
        return cls(items, models, raw)

    def fetched(self, key: str) -> Fetched:
        return Fetched(key, self.raw, parsed=self.models)

    def only(self, key: str) -> Fetched:
        """The one resource read by id, parsed or as its JSON."""
        (item,) = self.items
        return Fetched(key, parsed=(item,)) if isinstance(item, Resource) else Fetched(key, (item,))

    def read(self, key: str, rid: str) -> Fetched | None:
        """The first resource with this id, None when there is none."""
        for item in self.items:
            if isinstance(item, Resource):
                if item.id == rid:
                    return Fetched(key, parsed=(item,))
            elif item.get("id") == rid:
                return Fetched(key, (item,))
        return None


_NOTHING = Parsed()
"""A type the patient has no resource of (one instance: a default argument is built on every call)."""


def _model_or_json(resource: Mapping[str, object]) -> Resource | Mapping[str, object]:
    model = parse_resource(resource)
    return model if isinstance(model, Resource) else resource


def _read(kind: str, text: str) -> Resource | Mapping[str, object]:
    model = parse_resource_json(kind, text)
    return model if model is not None else _model_or_json(loads(text))


def _param(query: str, name: str) -> str | None:
    """One parameter of a query string (unquoted), without decoding the others: the career
    search carries every CTO-PCI code of the tables."""
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if unquote(key) == name:
            return unquote(value)
    return None


class OperatorCache:
    """Parsed operator histories by (practitioner id, search key), and the shared resources read by
    id (the operator's Practitioner, asked for again by every order), least recently used evicted."""

    def __init__(self, spool: Spool, size: int = _OPERATOR_CACHE) -> None:
        self._spool = spool
        self._size = size
        self._items: OrderedDict[tuple[str, str], Parsed] = OrderedDict()
        self._shared: OrderedDict[tuple[str, str], Parsed | None] = OrderedDict()

    def shared(self, rtype: str, rid: str) -> Parsed | None:
        """A resource of the export's shared table (not a patient's), parsed once; None if absent."""
        key = (rtype, rid)
        if key in self._shared:
            self._shared.move_to_end(key)
            return self._shared[key]
        found = self._spool.shared_resource(rtype, rid)
        parsed = self._shared[key] = None if found is None else Parsed.of([found])
        if len(self._shared) > self._size:
            self._shared.popitem(last=False)
        return parsed

    def get(self, practitioner: str, key: str) -> Parsed:
        found = self._items.get((practitioner, key))
        if found is None:
            found = Parsed.of(self._spool.practitioner_resources(practitioner, key))
            self._items[(practitioner, key)] = found
            if len(self._items) > self._size:
                self._items.popitem(last=False)
        else:
            self._items.move_to_end((practitioner, key))
        return found


class SpoolPatientSource:
    """A `RecordSource` over one patient's spooled resources and the shared operator data."""

    def __init__(
        self,
        spool: Spool,
        rows: Iterable[tuple[str, str]],
        operators: OperatorCache,
    ) -> None:
        """`rows`: the patient's resources as (resourceType, JSON text), `Spool.patient_rows`."""
        self._spool = spool
        self._operators = operators
        by_type: dict[str, list[tuple[str, str]]] = {}
        for row in rows:
            by_type.setdefault(row[0], []).append(row)
        self._by_type = {kind: Parsed.of_json(items) for kind, items in by_type.items()}

    def models_of(self, kind: str) -> tuple[Resource, ...]:
        """This patient's resources of one type that parse, in export order (the batch finds the
        orders here, parsed once)."""
        parsed = self._by_type.get(kind)
        return () if parsed is None else parsed.models

    def unread_of(self, kind: str) -> tuple[Mapping[str, object], ...]:
        """This patient's resources of one type that do not parse (for a type with a model)."""
        parsed = self._by_type.get(kind)
        return () if parsed is None else parsed.raw

    async def fetch(self, searches: Sequence[Search]) -> dict[str, Fetched]:
        return {search.key: self.answer(search) for search in searches}

    def answer(self, search: Search) -> Fetched:
        if search.key in _PATIENT_LISTS:
            return self._by_type.get(search.resource_type, _NOTHING).fetched(search.key)
        kind, is_search, query = search.path.partition("?")
        if search.key in ("operator_procedures", "operator_observations"):
            ref = _param(query, "performer") or _param(query, "focus") or ""
            practitioner = ref.rpartition("/")[2]
            return self._operators.get(practitioner, search.key).fetched(search.key)
        if not is_search:
            rtype, _, rid = unquote(kind).partition("/")
            found = self._by_type.get(rtype, _NOTHING).read(search.key, rid)
            if found is not None:
                return found
            shared = self._operators.shared(rtype, rid)
            if shared is not None:
                return shared.only(search.key)
            return Fetched(search.key, error=f"{rtype} not found in the export")
        return Fetched(search.key, error=f"search {search.key!r} is not answered by a batch run")
