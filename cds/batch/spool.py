"""A Bulk FHIR export spooled into a temporary SQLite file, so it can be read patient by patient.

Why it is built this way:

* A Bulk export is one NDJSON file per resource type, so one patient's resources are spread over
  every file; scoring needs them together. Reading the export into memory would make memory grow with
  the export; the spool writes each resource once into SQLite keyed by patient and by the
  Practitioner it concerns, then serves one patient (or one operator's history) at a time. Peak memory
  is one patient's record plus the few operators' histories cached — not the export.
* Resources are stored as their original JSON text and parsed by the batch source (`source.py`):
  once per patient, and once per operator for an operator's history.
* A line that is not a FHIR resource is an error *for that line* (file and line number), passed to
  `on_error`; the rest of the export is still spooled. So is a resource whose type and id came
  before (the first is kept): spooled twice it would weigh twice (two lesions, a doubled operator
  volume).
* An operator's CTO-PCI history (`Procedure?performer=`) spans patients: it is indexed by performer,
  and override Observations (`Observation?focus=Practitioner/…`) by focus.
"""

from __future__ import annotations

import codecs
import json
import re
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from cds.errors import integer_too_long
from cds.sources.files import NDJSON_SUFFIXES

_REF = re.compile(
    r"(?:^|/)(Patient|Practitioner|PractitionerRole)/([A-Za-z0-9\-.]{1,64})"
    r"(?:/_history/[A-Za-z0-9\-.]{1,64})?$"  # a version-specific reference: the same resource
)
_TYPE = re.compile(r"[A-Z][A-Za-z]{0,63}")
_SCHEMA = """
CREATE TABLE resource (patient TEXT, type TEXT NOT NULL, id TEXT, body TEXT NOT NULL);
CREATE TABLE shared (type TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE by_practitioner (practitioner TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL);
CREATE UNIQUE INDEX shared_ref ON shared (type, id);
CREATE TABLE seen (type TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (type, id)) WITHOUT ROWID;
"""
_INDEXES = """
CREATE INDEX resource_patient ON resource (patient);
CREATE INDEX resource_type ON resource (type, patient);
CREATE INDEX by_practitioner_key ON by_practitioner (practitioner, key);
"""
_BATCH = 2000
_COMPRESSED = frozenset({"gz", "bz2", "xz", "zst", "zip"})

_DIGITS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
"""A `bytes.translate` table: each ASCII digit → "0", anything else → " "."""
_LONG_NUMBER = b"0" * 19
"""orjson reads an integer beyond 64 bits (below -2**63, above 2**64 - 1: 19 digits or more) as a
float where json reads it exactly; a text with such a run of digits anywhere is read by json."""


def loads(text: str) -> Any:
    """`json.loads(text)`, read by orjson when that gives the same value (about twice as fast: the
    spool's JSON is parsed once per resource at ingest and again when it is scored). orjson reads
    floats as json does (both correctly rounded), and refuses what json reads otherwise (NaN,
    Infinity, 1e400, lone surrogates), which then goes to json; only long integers differ, hence
    the digit check (tests/batch/test_spool.py)."""
    data = text.encode("utf-8", "surrogatepass")  # a lone surrogate: orjson refuses, json reads
    if _LONG_NUMBER not in data.translate(_DIGITS):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


ErrorSink = Callable[[str, str], None]
"""(where, reason) → record the problem (e.g. a line of the errors file)."""


def _ref(value: object, kind: str) -> str | None:
    if isinstance(value, Mapping):
        match = _REF.search(str(value.get("reference") or ""))
        if match and match.group(1) == kind:
            return match.group(2)
    return None


def _export_file(name: str) -> bool:
    """An NDJSON file, or one compressed (it must not vanish silently: it is reported)."""
    stem, dot, suffix = name.lower().rpartition(".")
    if suffix in _COMPRESSED:
        stem, dot, suffix = stem.rpartition(".")
    return bool(stem and dot) and f".{suffix}" in NDJSON_SUFFIXES


def _cause(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _encodable(text: str) -> bool:
    """Whether SQLite can store `text` (UTF-8): a lone surrogate escape read from JSON cannot."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _patient_of(resource: Mapping[str, object]) -> str | None:
    if resource.get("resourceType") == "Patient":
        rid = resource.get("id")
        return rid if isinstance(rid, str) else None
    return _ref(resource.get("subject"), "Patient") or _ref(resource.get("patient"), "Patient")


def _practitioners(resource: Mapping[str, object]) -> list[tuple[str, str]]:
    """(practitioner id, search key) for the operator searches this resource answers."""
    kind = resource.get("resourceType")
    found: list[tuple[str, str]] = []
    performers, focuses = resource.get("performer"), resource.get("focus")
    if kind == "Procedure" and isinstance(performers, list):
        for performer in performers:
            if isinstance(performer, Mapping):
                pid = _ref(performer.get("actor"), "Practitioner")
                if pid:
                    found.append((pid, "operator_procedures"))
    elif kind == "Observation" and isinstance(focuses, list):
        for focus in focuses:
            pid = _ref(focus, "Practitioner")
            if pid:
                found.append((pid, "operator_observations"))
    return list(dict.fromkeys(found))


class Spool:
    """The spooled export (see the module notes). Open read-only in worker processes."""

    def __init__(self, path: Path, *, create: bool = False) -> None:
        self.path = path
        if create:
            self._db = sqlite3.connect(path)
            self._db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + _SCHEMA)
        else:
            self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        self._db.execute("PRAGMA cache_size=-4000")  # 4 MB page cache whatever the export size

    def close(self) -> None:
        self._db.close()

    def ingest(self, directory: Path, on_error: ErrorSink) -> int:
        """Spool every NDJSON file of the directory; return the number of resources stored."""
        try:
            named = sorted(p for p in directory.iterdir() if _export_file(p.name))
        except OSError as exc:
            on_error(str(directory), f"cannot read the directory ({_cause(exc)})")
            named = []
        files = []
        for path in named:
            if path.suffix.lower() not in NDJSON_SUFFIXES:  # an export saved compressed
                on_error(path.name, "compressed: decompress it to have it read; skipped")
            elif path.is_file():
                files.append(path)
            else:  # an export file that cannot be read must not vanish silently (a FIFO blocks)
                on_error(
                    path.name, "not a regular file (a directory, FIFO or broken link); skipped"
                )
        if not files:
            on_error(str(directory), f"no {' or '.join(NDJSON_SUFFIXES)} file in the directory")
        stored = 0
        rows: list[tuple[str | None, str, str | None, str]] = []
        shared: list[tuple[str, str, str]] = []
        links: list[tuple[str, str, str]] = []
        for path in files:
            number = 0
            try:
                # Bytes, split on LF only: a CR is JSON whitespace (text mode split a line at one),
                # and a byte that is not UTF-8 sets its own line aside, not the rest of the file.
                with path.open("rb") as handle:
                    for number, data in enumerate(handle, 1):
                        if number == 1:
                            data = data.removeprefix(codecs.BOM_UTF8)
                        try:
                            line = data.decode()
                        except UnicodeDecodeError as exc:
                            byte = f"byte 0x{exc.object[exc.start]:02X}"
                            on_error(f"{path.name}:{number}", f"not UTF-8 text ({byte})")
                            continue
                        stored += self._line(path.name, number, line, rows, shared, links, on_error)
                        if len(rows) + len(links) >= _BATCH:
                            self._flush(rows, shared, links)
            except OSError as exc:
                why = f"cannot read the file ({_cause(exc)}); the rest of it is skipped"
                on_error(f"{path.name}:{number + 1}", why)
        self._flush(rows, shared, links)
        self._db.executescript(_INDEXES)
        self._db.commit()
        return stored

    def _line(
        self,
        name: str,
        number: int,
        line: str,
        rows: list[tuple[str | None, str, str | None, str]],
        shared: list[tuple[str, str, str]],
        links: list[tuple[str, str, str]],
        on_error: ErrorSink,
    ) -> int:
        text = line.strip()
        if not text:
            return 0
        where = f"{name}:{number}"
        try:
            resource = loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            on_error(where, f"not valid JSON ({getattr(exc, 'msg', 'nested too deeply')})")
            return 0
        except ValueError:  # not a JSONDecodeError: an integer past Python's digit limit
            on_error(where, f"not valid JSON ({integer_too_long()})")
            return 0
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            on_error(where, "not a FHIR resource (no resourceType)")
            return 0
        kind = resource["resourceType"]
        if not _encodable(kind):  # never echoed: the errors file could not hold it either
            on_error(where, "resourceType is not valid Unicode (a lone surrogate escape)")
            return 0
        if not _TYPE.fullmatch(kind):  # "Procedure " or "procedure" would be searched for in vain
            on_error(where, "resourceType is not a FHIR type name (a capital, then letters)")
            return 0
        rid = resource.get("id")
        if rid is not None and not isinstance(rid, str):
            on_error(where, f"{kind}.id is not a string")
            return 0
        if rid is not None and not _encodable(rid):
            on_error(where, f"{kind}.id is not valid Unicode (a lone surrogate escape)")
            return 0
        if rid is not None and self._known(kind, rid):
            on_error(where, f"{kind}/{rid}: same id as an earlier resource; the first one is kept")
            return 0
        patient = _patient_of(resource)
        if patient is not None:
            rows.append((patient, kind, rid, text))
        elif rid is not None and kind != "Patient":
            shared.append((kind, rid, text))
        else:  # nothing can find it: a Patient by its id, anything else by its patient or its id
            orphan = "" if kind == "Patient" else " and without a patient"
            on_error(where, f"{kind} without id{orphan}: cannot be found")
            return 0
        for practitioner, key in _practitioners(resource):
            links.append((practitioner, key, text))
        return 1

    def _flush(
        self,
        rows: list[tuple[str | None, str, str | None, str]],
        shared: list[tuple[str, str, str]],
        links: list[tuple[str, str, str]],
    ) -> None:
        self._db.executemany("INSERT INTO resource VALUES (?, ?, ?, ?)", rows)
        self._db.executemany("INSERT INTO shared VALUES (?, ?, ?)", shared)
        self._db.executemany("INSERT INTO by_practitioner VALUES (?, ?, ?)", links)
        rows.clear()
        shared.clear()
        links.clear()

    def _known(self, kind: str, rid: str) -> bool:
        """Whether a resource of this type and id was read already (else it is noted as read)."""
        added = self._db.execute("INSERT OR IGNORE INTO seen VALUES (?, ?)", (kind, rid))
        return added.rowcount == 0

    def count_order_patients(self) -> int:
        row = self._db.execute(
            "SELECT COUNT(DISTINCT patient) FROM resource "
            "WHERE type = 'ServiceRequest' AND patient IS NOT NULL"
        ).fetchone()
        return int(row[0])

    def iter_order_patients(self, page: int = 500) -> Iterator[str]:
        return self.iter_patients_with("ServiceRequest", page)

    def iter_patients_with(self, kind: str, page: int = 500) -> Iterator[str]:
        """Patients with at least one resource of this type, in id order, read a page at a time."""
        after = ""
        while batch := self._patients_with(kind, after, page):
            yield from batch
            after = batch[-1]

    def _patients_with(self, kind: str, after: str, limit: int) -> list[str]:
        rows = self._db.execute(
            "SELECT DISTINCT patient FROM resource WHERE type = ? AND patient > ? "
            "ORDER BY patient LIMIT ?",
            (kind, after, limit),
        ).fetchall()
        return [r[0] for r in rows]

    def patient_resources(self, patient: str) -> list[dict[str, object]]:
        return [loads(body) for _, body in self.patient_rows(patient)]

    def patient_rows(self, patient: str) -> list[tuple[str, str]]:
        """The patient's resources as (resourceType, JSON text): the batch source parses the lean
        models straight from the text and reads a dict only where it needs one."""
        rows = self._db.execute("SELECT type, body FROM resource WHERE patient = ?", (patient,))
        return rows.fetchall()

    def shared_resource(self, kind: str, rid: str) -> dict[str, object] | None:
        row = self._db.execute(
            "SELECT body FROM shared WHERE type = ? AND id = ?", (kind, rid)
        ).fetchone()
        return None if row is None else dict(loads(row[0]))

    def shared_rows(self, kind: str) -> Iterator[str]:
        """The JSON text of each resource of this type spooled without a patient, in export order."""
        rows = self._db.execute("SELECT body FROM shared WHERE type = ? ORDER BY rowid", (kind,))
        return (body for (body,) in rows)

    def practitioner_resources(self, practitioner: str, key: str) -> list[dict[str, object]]:
        rows = self._db.execute(
            "SELECT body FROM by_practitioner WHERE practitioner = ? AND key = ?",
            (practitioner, key),
        )
        return [loads(body) for (body,) in rows]
