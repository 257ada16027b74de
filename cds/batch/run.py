"""Batch scoring of a whole registry: a Bulk FHIR export (NDJSON directory) or a CSV of inputs.

Why it is built this way:

* Streaming with bounded memory: the export is spooled to a temporary SQLite file (`spool.py`) and
  scored patient by patient; a CSV is read row by row. Work is cut into chunks and at most a few
  chunks per worker are in flight, so neither the input nor the output is ever held whole.
* `--jobs N` runs N worker processes (scoring is CPU-bound: threads would share one core). Results are
  written in input order whatever the number of jobs, so one job and N jobs give the same file.
* One result line per CTO-PCI order: `{"patient", "order", "scores", "inputs", "context"}`, i.e. the
  `cto-cds score --json` contract for FHIR-sourced inputs plus where the order came from. A CSV row
  gives `{"line", "lesion_id", "scores"}`. Anything that cannot be scored goes to the errors file with
  the reason and does not stop the run.
"""

from __future__ import annotations

import asyncio
import gc
import json
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date
from itertools import islice
from pathlib import Path
from typing import TypeVar

import orjson
from pydantic import ValidationError

from cds.batch.source import OperatorCache, SpoolPatientSource
from cds.batch.spool import Spool, loads
from cds.errors import CdsError
from cds.mapping.matching import counts, is_cto_pci
from cds.mapping.operator import OperatorHistories, history_planner
from cds.mapping.tables import MappingTables, load_tables
from cds.pipeline import score_record
from cds.scored_case import ScoredCase
from cds.scoring.engine import score_all
from cds.scoring.result import ScoreResult
from cds.sources.record import RecordRequest, read_record
from cds.sources.resources import (
    CodeableConcept,
    Procedure,
    ResourceProblem,
    ServiceRequest,
    parse_resource,
)

T = TypeVar("T")
R = TypeVar("R")
CHUNK = 64
"""Patients or rows per unit of work: large enough to amortise inter-process overhead."""


@dataclass(frozen=True, repr=False)
class ChunkResult:
    lines: list[str]
    errors: list[str]
    units: int
    """Patients or rows consumed (for the progress bar)."""
    scored: int
    """Result lines written (orders or rows)."""

    def __repr__(self) -> str:
        # Short: asyncio.run formats the finished task, result included, when it restores the
        # SIGINT handler; the default repr of ~1 MB of lines cost 15 ms per chunk.
        return f"ChunkResult(units={self.units}, scored={self.scored}, errors={len(self.errors)})"


def _small_float(data: bytes) -> bool:
    """Whether orjson's text may hold a float json writes otherwise: only 0 < |x| < 1e-4 differ
    ("0.00001" and "2.5e-7" where json writes "1e-05" and "2.5e-07"; tests/batch/test_dump.py). A
    match inside a string is only a false alarm (the line is then written by json). Substring
    searches, not a regular expression: this runs on every 16 kB line."""
    if b"0.0000" in data:
        return True
    at = data.find(b"e-")
    while at > 0:
        if data[at - 1] in b"0123456789":
            return True
        at = data.find(b"e-", at + 2)
    return False


def _dump(obj: object) -> str:
    """One NDJSON line, byte-for-byte what `json.dumps(obj, ensure_ascii=False, separators=(",",
    ":"))` writes; orjson writes it ~10× faster, json only when a small float could read otherwise.
    (orjson would write NaN as null where json writes NaN: results hold none, inputs are finite.)"""
    try:
        data: bytes | None = orjson.dumps(obj)
    except orjson.JSONEncodeError:  # e.g. a lone surrogate: json writes it or says what is wrong
        data = None
    if data is None or _small_float(data):
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"
    return data.decode() + "\n"


_FRAGMENTS: dict[int, tuple[ScoreResult, orjson.Fragment]] = {}
"""id(result) → the result and its JSON. The engine hands out the same `ScoreResult` object for the
same values (`cds/scoring/engine.py`), so each is serialised once, not once per order (a report's 8
results were 13 % of an order's CPU); the entry holds the result, so the id cannot be reused."""
_FRAGMENT_LIMIT = 4096


def _score_fragment(result: ScoreResult) -> orjson.Fragment | None:
    """The result's JSON as orjson writes it; None when orjson refuses it (json then writes it)."""
    kept = _FRAGMENTS.get(id(result))
    if kept is not None and kept[0] is result:
        return kept[1]
    try:
        fragment = orjson.Fragment(orjson.dumps(result.model_dump(mode="json")))
    except orjson.JSONEncodeError:
        return None
    if len(_FRAGMENTS) >= _FRAGMENT_LIMIT:
        _FRAGMENTS.clear()
    _FRAGMENTS[id(result)] = (result, fragment)
    return fragment


def _case_line(where: dict[str, object], case: ScoredCase) -> str:
    """`_dump({**where, **case.contract()})`, with each score's JSON written once per result: the
    line is checked for small floats as a whole (fragments included), and written by `_dump` from
    the plain contract when it has one or when orjson refuses a part."""
    fragments = {sid: _score_fragment(result) for sid, result in case.report.scores.items()}
    if None not in fragments.values():
        try:
            data = orjson.dumps({**where, **case.contract(scores=fragments)})
        except orjson.JSONEncodeError:  # e.g. a lone surrogate in a note: json writes it below
            pass
        else:
            if not _small_float(data):
                return data.decode() + "\n"
    return _dump({**where, **case.contract()})


def _error(where: Mapping[str, object], reason: str) -> str:
    return _dump({**where, "reason": reason})


def chunks(items: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def ordered_map(
    fn: Callable[[T], R],
    work: Iterable[T],
    jobs: int,
    initializer: Callable[..., None],
    initargs: tuple[object, ...],
) -> Iterator[R]:
    """`map(fn, work)` in order, over `jobs` processes, with a bounded number of chunks in flight."""
    if jobs <= 1:
        initializer(*initargs)
        yield from map(fn, work)
        return
    context = multiprocessing.get_context("spawn")  # no fork of a process that has threads
    with ProcessPoolExecutor(jobs, context, initializer, initargs) as pool:
        window: deque[Future[R]] = deque()
        for item in work:
            window.append(pool.submit(fn, item))
            if len(window) >= 3 * jobs:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()


# --- Bulk FHIR export ------------------------------------------------------------------------------

_state: dict[str, object] = {}
"""Per-process worker state (spool connection, tables, caches), set by the initializer."""


def init_export_worker(spool_path: str, mappings: str | None, today: str) -> None:
    spool = Spool(Path(spool_path))
    tables = load_tables(Path(mappings) if mappings else None)
    _state.update(
        spool=spool,
        tables=tables,
        today=date.fromisoformat(today),
        operators=OperatorCache(spool),
        histories=OperatorHistories(tables),
    )
    # What is loaded now (code, tables, models) lives as long as the worker: out of the cycle
    # collector's way, so its full collections walk only what scoring keeps (GC: ~4 % -> ~2 %).
    gc.freeze()


def _cto_orders(tables: MappingTables, source: SpoolPatientSource) -> list[ServiceRequest]:
    """The patient's CTO-PCI orders, from the ServiceRequests the source parsed once."""
    return [
        order
        for order in source.models_of("ServiceRequest")
        if isinstance(order, ServiceRequest)
        and counts(order)
        and is_cto_pci(tables, "ServiceRequest", order.code)
    ]


def unread_cto_pci(
    tables: MappingTables, kind: str, raw: Mapping[str, object]
) -> ResourceProblem | None:
    """Why a resource the lean model refuses is not read, if it may be a CTO-PCI (its code reads as
    one, or cannot be read): the caller reports it, or a case would be lost without a word."""
    problem = parse_resource(raw)
    if not isinstance(problem, ResourceProblem):
        return None
    code = raw.get("code")
    try:
        concept = None if code is None else CodeableConcept.model_validate(code)
    except ValidationError:
        return problem
    return problem if is_cto_pci(tables, kind, concept) else None


def without_patient(spool: Spool, tables: MappingTables, kind: str) -> Iterator[str]:
    """`Type/id` of each CTO-PCI of this type (an order, a procedure) whose subject is no Patient:
    spooled as shared, it is in no patient's record, and would be lost without a word."""
    for text in spool.shared_rows(kind):
        resource = parse_resource(loads(text))
        if (
            isinstance(resource, ServiceRequest | Procedure)
            and counts(resource)
            and is_cto_pci(tables, kind, resource.code)
        ):
            yield resource.ref


async def _score_patients(patients: list[str]) -> ChunkResult:
    spool = _state["spool"]
    tables = _state["tables"]
    today = _state["today"]
    operators = _state["operators"]
    assert isinstance(spool, Spool)
    assert isinstance(tables, MappingTables)
    assert isinstance(today, date)
    assert isinstance(operators, OperatorCache)
    histories = _state["histories"]
    planner = history_planner(tables, today)  # once: it scans the tables for the career codes
    assert isinstance(histories, OperatorHistories)
    lines: list[str] = []
    errors: list[str] = []
    for patient in patients:
        source = SpoolPatientSource(spool, spool.patient_rows(patient), operators)
        for raw in source.unread_of("ServiceRequest"):
            problem = unread_cto_pci(tables, "ServiceRequest", raw)
            if problem is not None:
                unread = {"patient": patient, "order": problem.resource}
                errors.append(_error(unread, f"{problem.element}: {problem.message}"))
        for order in _cto_orders(tables, source):
            where: dict[str, object] = {"patient": patient, "order": f"ServiceRequest/{order.id}"}
            try:
                request = RecordRequest(patient_id=patient, order=order)
                record = await read_record(source, request, None, planner)
                case = score_record(record, tables, today, histories, labels=False)
            except (CdsError, ValueError, OverflowError) as exc:  # a date near 9999-12-31
                errors.append(_error(where, str(exc)))
                continue
            if record.patient is None:
                errors.append(_error(where, "no Patient resource with this id in the export"))
                continue
            lines.append(_case_line(where, case))
    return ChunkResult(lines, errors, len(patients), len(lines))


def score_patient_chunk(patients: list[str]) -> ChunkResult:
    return asyncio.run(_score_patients(patients))


# --- CSV of inputs ---------------------------------------------------------------------------------

CsvRow = tuple[int, str | None, dict[str, object]]


def init_csv_worker() -> None:
    """Nothing to set up: the CSV worker is pure scoring."""


def score_csv_chunk(rows: list[CsvRow]) -> ChunkResult:
    from cds.scoring.inputs import InputValue

    lines = []
    for line, lesion_id, inputs in rows:
        typed: dict[str, InputValue | None] = inputs  # type: ignore[assignment]
        report = score_all(typed)
        lines.append(
            _dump({"line": line, "lesion_id": lesion_id, **report.model_dump(mode="json")})
        )
    return ChunkResult(lines, [], len(rows), len(lines))


def read_csv_rows(path: Path, errors: Callable[[str], None]) -> Iterator[CsvRow]:
    """The CSV's valid rows, streaming; bad rows go to `errors`. `technical_success` is optional."""
    from cds.validation.cohort import iter_rows

    # A byte that is not UTF-8 sets its row aside (iter_rows), not the rest of the file.
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        for lesion, row_errors, _absent in iter_rows(handle, str(path), require_outcome=False):
            for e in row_errors:
                errors(_error({"line": e.line, "column": e.column}, f"{e.value!r} {e.reason}"))
            if lesion is not None:
                yield lesion.line, lesion.lesion_id, dict(lesion.inputs)
