"""The record from a file: a FHIR Bundle or an NDJSON export, searched in memory.

Why it is built this way:

* The CLI and the tests need a record without a FHIR server, read through the same planned searches
  (`searches.py`) as the prefetch and REST sources, so all three give the mapping the same shape.
* Searches are evaluated with a FHIR server's meaning, for the parameters the planner uses only
  (`patient`, `Procedure.performer`, `Observation.focus`, and the career's `Procedure.code` tokens and
  `date=lt`, through the same `searches.within` every source's career goes through; `_count` and
  `_elements` are ignored: a file's resources are whole). Any other parameter is an error for that
  search: a planner change cannot silently match every resource.
* References are matched by what they point to: `Patient/ID`, an absolute URL ending in `/Patient/ID`,
  or another entry's `urn:uuid:` fullUrl (transaction Bundles), resolved through the file's entries.
* A file that is not FHIR fails at load with `SourceError` naming the file and the entry or line, so a
  typo in a test fixture is not mistaken for an empty record.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn
from urllib.parse import parse_qsl, unquote

from cds.errors import SourceError, integer_too_long
from cds.sources.reasons import Problem, reason
from cds.sources.record import Fetched
from cds.sources.searches import Search, valid_id, within

NDJSON_SUFFIXES = (".ndjson", ".jsonl")
_TYPE = re.compile(r"^[A-Z][A-Za-z]{0,63}$")
_REFERENCE = re.compile(
    r"(?:^|/)([A-Z][A-Za-z]{0,63})/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?$"
)
_UUID = "urn:uuid:"


@dataclass(frozen=True)
class FileEntry:
    """One resource as found in a file; `resource` is checked when the source is built."""

    resource: object
    full_url: str | None = None
    where: str = ""
    """Entry or line, for error messages ("entry 3", "line 7")."""


def _subject(resource: Mapping[str, object]) -> list[object]:
    return [resource.get("subject"), resource.get("patient")]


def _performer_actor(resource: Mapping[str, object]) -> list[object]:
    performers = resource.get("performer")
    if not isinstance(performers, list):
        return []
    return [p.get("actor") for p in performers if isinstance(p, Mapping)]


def _focus(resource: Mapping[str, object]) -> list[object]:
    focus = resource.get("focus")
    return list(focus) if isinstance(focus, list) else []


_PARAMETERS: dict[tuple[str, str], Callable[[Mapping[str, object]], list[object]]] = {
    ("*", "patient"): _subject,
    ("Procedure", "performer"): _performer_actor,
    ("Observation", "focus"): _focus,
}
"""(resource type or "*", search parameter) → the References it matches on."""

_IGNORED_PARAMETERS = frozenset({"_count", "_elements"})
_FILTERS = {("Procedure", "code"), ("Procedure", "date")}
"""Content filters evaluated by `searches.within` (the career search's)."""


class FileSource:
    """Answers planned searches from resources held in memory (a Bundle or NDJSON file)."""

    def __init__(
        self, entries: Iterable[FileEntry | Mapping[str, object]], name: str = "(memory)"
    ) -> None:
        self.name = name
        self._resources: list[Mapping[str, object]] = []
        self._by_reference: dict[str, Mapping[str, object]] = {}
        self._where: dict[str, str] = {}
        self._aliases: dict[str, str] = {}
        """fullUrl → `Type/id`, so `urn:uuid:` and absolute references resolve."""
        for index, item in enumerate(entries):
            self._add(
                item if isinstance(item, FileEntry) else FileEntry(item, None, f"item {index}")
            )
        if self._aliases:
            # As a server does when it stores a transaction: fullUrl references become Type/id.
            self._resources = [self._rewrite(r) for r in self._resources]  # type: ignore[misc]
            self._by_reference = {
                f"{r.get('resourceType')}/{r.get('id')}": r
                for r in self._resources
                if r.get("id") is not None
            }

    def _rewrite(self, value: object) -> object:
        if isinstance(value, Mapping):
            out = {k: self._rewrite(v) for k, v in value.items()}
            ref = out.get("reference")
            if isinstance(ref, str) and ref in self._aliases:
                out["reference"] = self._aliases[ref]
            return out
        if isinstance(value, list):
            return [self._rewrite(v) for v in value]
        return value

    @classmethod
    def from_path(cls, path: str | Path) -> FileSource:
        """Load a Bundle JSON (any Bundle type) or, for `.ndjson`/`.jsonl`, one resource a line."""
        path = Path(path)
        name = str(path)
        try:
            # Not read_text: its newline translation makes a CR (JSON whitespace) a line break.
            text = path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise SourceError(f"{name}: not UTF-8 text", url=name) from None
        except OSError as exc:
            cause = exc.strerror or type(exc).__name__
            raise SourceError(f"{name}: cannot read the file ({cause})", url=name) from None
        if path.suffix.lower() in NDJSON_SUFFIXES:
            return cls.from_ndjson(text, name)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno}, column {exc.colno}"
            raise SourceError(f"{name}: {where}: not valid JSON ({exc.msg})", url=name) from None
        except RecursionError:
            raise SourceError(f"{name}: JSON nested too deeply", url=name) from None
        except ValueError:  # not a JSONDecodeError: an integer past Python's digit limit
            raise SourceError(f"{name}: not valid JSON ({integer_too_long()})", url=name) from None
        return cls.from_bundle(data, name)

    @classmethod
    def from_bundle(cls, bundle: object, name: str = "(bundle)") -> FileSource:
        """A Bundle of any type (collection, transaction, searchset, document)."""
        if not isinstance(bundle, Mapping) or bundle.get("resourceType") != "Bundle":
            hint = f" (NDJSON files must end in {' or '.join(NDJSON_SUFFIXES)})"
            raise SourceError(f"{name}: not a FHIR Bundle{hint}", url=name)
        raw_entries = bundle.get("entry", [])
        if not isinstance(raw_entries, list):
            raise SourceError(f"{name}: Bundle.entry is not a list", url=name)
        entries: list[FileEntry] = []
        for index, entry in enumerate(raw_entries):
            where = f"entry {index}"
            if not isinstance(entry, Mapping):
                raise SourceError(f"{name}: {where}: not a JSON object", url=name)
            full_url = entry.get("fullUrl")
            if full_url is not None and not isinstance(full_url, str):
                raise SourceError(f"{name}: {where}: fullUrl is not a string", url=name)
            if entry.get("resource") is not None:  # a transaction DELETE has none: nothing to read
                entries.append(FileEntry(entry["resource"], full_url, where))
        return cls(entries, name)

    @classmethod
    def from_ndjson(cls, text: str, name: str = "(ndjson)") -> FileSource:
        """One resource per line (FHIR bulk data export); blank lines are ignored."""
        entries: list[FileEntry] = []
        # LF only: splitlines() also breaks at CR, U+0085 and U+2028, which JSON allows in a line.
        for number, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                resource = json.loads(line)
            except json.JSONDecodeError as exc:
                problem = f"not valid JSON ({exc.msg}, column {exc.colno})"
                raise SourceError(f"{name}: line {number}: {problem}", url=name) from None
            except RecursionError:
                raise SourceError(f"{name}: line {number}: nested too deeply", url=name) from None
            except ValueError:  # not a JSONDecodeError: an integer past Python's digit limit
                problem = f"not valid JSON ({integer_too_long()})"
                raise SourceError(f"{name}: line {number}: {problem}", url=name) from None
            entries.append(FileEntry(resource, None, f"line {number}"))
        return cls(entries, name)

    def _add(self, entry: FileEntry) -> None:
        resource = entry.resource
        if not isinstance(resource, Mapping):
            self._fail(entry, "resource is not a JSON object")
        kind = resource.get("resourceType")
        if not isinstance(kind, str) or not _TYPE.match(kind):
            self._fail(entry, "resource has no valid resourceType")
        rid = resource.get("id")
        uuid = (entry.full_url or "").removeprefix(_UUID)
        if rid is None and (entry.full_url or "").startswith(_UUID) and valid_id(uuid):
            # A transaction POST has no id yet: the server would assign one; its uuid stands in.
            rid = uuid
            resource = {**resource, "id": rid}
        if rid is not None:
            if not isinstance(rid, str) or not valid_id(rid):
                self._fail(entry, f"{kind}.id is not a FHIR id")
            reference = f"{kind}/{rid}"
            if reference in self._by_reference:
                self._fail(entry, f"same {kind} id as {self._where[reference]}")
            self._by_reference[reference] = resource
            self._where[reference] = entry.where
        if entry.full_url:
            if entry.full_url in self._aliases:
                self._fail(entry, "same fullUrl as an earlier entry")
            if rid is not None:
                self._aliases[entry.full_url] = f"{kind}/{rid}"
        self._resources.append(resource)

    def _fail(self, entry: FileEntry, problem: str) -> NoReturn:
        raise SourceError(f"{self.name}: {entry.where}: {problem}", url=self.name)

    @property
    def resources(self) -> Sequence[Mapping[str, object]]:
        return tuple(self._resources)

    def order_patient_id(self, order_id: str) -> str:
        """The Patient id of the order's subject, so a multi-patient file needs no patient named."""
        order = self._by_reference.get(f"ServiceRequest/{order_id}")
        if order is None:
            raise SourceError(
                f"{self.name}: no ServiceRequest/{order_id} in the file", url=self.name
            )
        target = self.resolve(order.get("subject"))
        kind, _, rid = (target or "").partition("/")
        if kind != "Patient" or not valid_id(rid):
            raise SourceError(
                f"{self.name}: ServiceRequest/{order_id}.subject is not a Patient reference",
                url=self.name,
            )
        return rid

    def only_patient_id(self) -> str:
        """The id of the file's one Patient, so a single-patient file needs no patient id given."""
        patients = [r for r in self._resources if r.get("resourceType") == "Patient"]
        if len(patients) != 1:
            raise SourceError(
                f"{self.name}: holds {len(patients)} Patient resources: name the patient"
                " (--patient) or the order (--order)",
                url=self.name,
            )
        rid = patients[0].get("id")
        if not isinstance(rid, str):
            raise SourceError(f"{self.name}: the Patient has no id", url=self.name)
        return rid

    async def fetch(self, searches: Sequence[Search]) -> dict[str, Fetched]:
        """Answer each search from memory; an unsupported search is an error, never "everything"."""
        return {search.key: self.answer(search) for search in searches}

    def answer(self, search: Search) -> Fetched:
        """One planned read (`Type/id`) or search (`Type?param=value&...`)."""
        kind, is_search, query = search.path.partition("?")
        if not is_search:
            resource = self._by_reference.get(unquote(search.path))
            if resource is None or resource.get("resourceType") != search.resource_type:
                return self._error(search, Problem.NOT_FOUND, "not in the file")
            return Fetched(search.key, (resource,))
        if kind != search.resource_type:
            return self._error(search, Problem.INTERNAL, "search path and resource type disagree")
        criteria: list[tuple[Callable[[Mapping[str, object]], list[object]], set[str]]] = []
        for name, value in parse_qsl(query, keep_blank_values=True):
            if name in _IGNORED_PARAMETERS or (kind, name) in _FILTERS:
                continue
            extract = _PARAMETERS.get((kind, name)) or _PARAMETERS.get(("*", name))
            if extract is None:
                why = f"unsupported search parameter {name!r} for {kind}"
                return self._error(search, Problem.INTERNAL, why)
            criteria.append((extract, _targets(name, value)))
        matches = tuple(
            resource
            for resource in self._resources
            if resource.get("resourceType") == kind
            and all(self._refers_to(extract(resource), targets) for extract, targets in criteria)
            and within(search, resource) is not False
        )
        return Fetched(search.key, matches)

    def _error(self, search: Search, problem: Problem, cause: str) -> Fetched:
        return Fetched(search.key, error=reason(search, problem, cause), problem=problem)

    def _refers_to(self, references: list[object], targets: set[str]) -> bool:
        """Whether any Reference points to a target (`Type/id`, or `*/id` for any type)."""
        for reference in references:
            target = self.resolve(reference)
            if target and (target in targets or "*/" + target.partition("/")[2] in targets):
                return True
        return False

    def resolve(self, reference: object) -> str | None:
        """`Type/id` of what a Reference points to, through fullUrls; None if not resolvable."""
        text = reference.get("reference") if isinstance(reference, Mapping) else None
        if not isinstance(text, str):
            return None
        if text in self._aliases:
            return self._aliases[text]
        match = _REFERENCE.search(text)
        return f"{match[1]}/{match[2]}" if match else None


def _targets(name: str, value: str) -> set[str]:
    """What a reference parameter value asks for: `Type/id`, or `*/id` for a bare id of any type.

    `patient` is a reference to a Patient: `patient=ID` means `Patient/ID`, another type never matches.
    """
    targets: set[str] = set()
    for part in value.split(","):
        match = _REFERENCE.search(part)
        if match:
            targets.add(f"{match[1]}/{match[2]}")
        elif "/" not in part and part:
            targets.add(f"Patient/{part}" if name == "patient" else f"*/{part}")
    if name == "patient":
        targets = {t for t in targets if t.startswith("Patient/")}
    return targets
