"""The record source of a batch run: one patient's resources from the spool, answered as searches.

It answers the same planned searches (`cds/sources/searches.py`) as the prefetch, REST and file
sources, so `read_record` and the mapping see exactly what they would see from a FHIR server. An
operator's history is the same for every patient that operator treats: it is read from the spool once
and kept in a small LRU cache (a handful of operators, so memory stays bounded).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from urllib.parse import parse_qsl, unquote

from cds.batch.spool import Spool
from cds.sources.record import Fetched
from cds.sources.searches import Search

_PATIENT_LISTS = {
    "conditions": "Condition",
    "procedures": "Procedure",
    "observations": "Observation",
    "reports": "DiagnosticReport",
    "orders": "ServiceRequest",
}
_OPERATOR_CACHE = 16


class OperatorCache:
    """Operator histories by (practitioner id, search key), least recently used evicted."""

    def __init__(self, spool: Spool, size: int = _OPERATOR_CACHE) -> None:
        self._spool = spool
        self._size = size
        self._items: OrderedDict[tuple[str, str], tuple[Mapping[str, object], ...]] = OrderedDict()

    def get(self, practitioner: str, key: str) -> tuple[Mapping[str, object], ...]:
        found = self._items.get((practitioner, key))
        if found is None:
            found = tuple(self._spool.practitioner_resources(practitioner, key))
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
        resources: Sequence[Mapping[str, object]],
        operators: OperatorCache,
    ) -> None:
        self._spool = spool
        self._operators = operators
        self._by_type: dict[str, list[Mapping[str, object]]] = {}
        for resource in resources:
            self._by_type.setdefault(str(resource.get("resourceType")), []).append(resource)

    async def fetch(self, searches: Sequence[Search]) -> dict[str, Fetched]:
        return {search.key: self.answer(search) for search in searches}

    def answer(self, search: Search) -> Fetched:
        kind, is_search, query = search.path.partition("?")
        params = dict(parse_qsl(query))
        if search.key in _PATIENT_LISTS:
            return Fetched(search.key, tuple(self._by_type.get(search.resource_type, ())))
        if search.key in ("operator_procedures", "operator_observations"):
            ref = params.get("performer") or params.get("focus") or ""
            practitioner = ref.rpartition("/")[2]
            return Fetched(search.key, self._operators.get(practitioner, search.key))
        if not is_search:
            rtype, _, rid = unquote(kind).partition("/")
            for resource in self._by_type.get(rtype, ()):
                if resource.get("id") == rid:
                    return Fetched(search.key, (resource,))
            shared = self._spool.shared_resource(rtype, rid)
            if shared is not None:
                return Fetched(search.key, (shared,))
            return Fetched(search.key, error=f"{rtype} not found in the export")
        return Fetched(search.key, error=f"search {search.key!r} is not answered by a batch run")
