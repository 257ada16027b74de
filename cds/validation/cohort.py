"""A site's validation cohort from a registry spreadsheet (CSV, one row per lesion).

Columns: the canonical inputs of docs/spec/inputs.md (`cds/scoring/inputs.py`), `technical_success`
(0/1, required), and optionally `procedural_success` (0/1), `operator_id`, `procedure_date`
(YYYY-MM-DD), `lesion_id`. An empty cell is unknown — it is never read as "absent" or 0.

Why it is built this way:

* A bad cell does not sink the file: the row is set aside as a `RowError` naming its line, column,
  value and reason, and the other rows are still analysed (`strict` callers refuse the file instead).
  A row with more or fewer cells than the header is set aside whole: its values may be in the wrong
  columns; so is a row the csv module refuses (a cell longer than its limit), and reading goes on.
* A column that is neither an input nor an outcome column is refused for the whole file: it is most
  likely a misspelt input whose values would otherwise be silently dropped.
* A canonical input with no column is unknown in every row; the analysis excludes the rows per score
  and says so.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date

from cds.errors import CdsError
from cds.scoring.inputs import INPUT_SPECS, INPUTS, InputSpec, InputValue, counted, number_from_text

OUTCOME = "technical_success"
EXTRA_COLUMNS = ("procedural_success", "operator_id", "procedure_date", "lesion_id")
_TRUE = frozenset({"1", "true", "yes", "y"})
_FALSE = frozenset({"0", "false", "no", "n"})
_UNDECODED = re.compile("[\udc80-\udcff]")
"""What `errors="surrogateescape"` makes of a byte that is not UTF-8: the callers read the file so,
and a row with one is set aside, not the whole file."""


class CohortError(CdsError):
    """The file as a whole cannot be read (not CSV, no outcome column, an unknown column)."""


@dataclass(frozen=True)
class RowError:
    line: int
    column: str
    value: str
    reason: str
    where: str | None = None
    """Instead of the line, for a FHIR cohort: the resource (`Procedure/…`) or export file line."""

    @property
    def row(self) -> str:
        return self.where or f"line {self.line}"

    def __str__(self) -> str:
        if self.where is not None:
            field = f", {self.column}" if self.column else ""
            shown = f" {self.value!r}" if self.value else ""
            return f"{self.where}{field}:{shown} {self.reason}"
        return f"line {self.line}, column {self.column}: {self.value!r} {self.reason}"


@dataclass(frozen=True)
class Lesion:
    line: int
    inputs: dict[str, InputValue | None]
    technical_success: int | None
    """None only when read without an outcome column (batch scoring of inputs)."""
    procedural_success: int | None = None
    operator_id: str | None = None
    procedure_date: date | None = None
    lesion_id: str | None = None


@dataclass
class Cohort:
    source: str
    lesions: list[Lesion] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    absent_inputs: tuple[str, ...] = ()
    """Canonical inputs without a column: unknown in every row."""
    mappings: str | None = None
    """The version of the mapping tables the inputs were read with (`MappingTables.version`, a
    FHIR export); None when they were given as columns."""


def _cell(spec: InputSpec, text: str) -> InputValue:
    """A cell's value for one input; raises ValueError with the reason."""
    if spec.kind == "boolean":
        low = text.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError("must be 0/1, true/false or yes/no (empty = unknown)")
    if spec.kind == "enum":
        return text
    number = number_from_text(spec, text)
    if number is None:
        raise ValueError(f"must be {spec.describe()}")
    return number


def _binary(text: str) -> int:
    if text in ("0", "1"):
        return int(text)
    raise ValueError("must be 0 or 1")


def _header(fields: list[str] | None, source: str, require_outcome: bool) -> list[str]:
    if not fields:
        raise CohortError(f"{source}: empty file (need a header row)")
    names = [f.strip() for f in fields]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise CohortError(f"{source}: duplicate column {duplicates[0]!r}")
    unknown = [n for n in names if n not in INPUT_SPECS and n != OUTCOME and n not in EXTRA_COLUMNS]
    if unknown:
        raise CohortError(
            f"{source}: unknown column {unknown[0]!r} (not a canonical input, {OUTCOME} or one of "
            f"{', '.join(EXTRA_COLUMNS)}; see `cto-cds inputs`)"
        )
    if require_outcome and OUTCOME not in names:
        raise CohortError(f"{source}: no {OUTCOME} column (0/1 per lesion)")
    return names


def _row(line: int, row: dict[str, str], has_outcome: bool) -> tuple[Lesion | None, list[RowError]]:
    errors: list[RowError] = []
    inputs: dict[str, InputValue | None] = {spec.name: None for spec in INPUTS}
    for name, raw in row.items():
        text = raw.strip()
        if name not in INPUT_SPECS or not text:
            continue
        spec = INPUT_SPECS[name]
        try:
            value = _cell(spec, text)
        except ValueError as exc:
            errors.append(RowError(line, name, text, str(exc)))
            continue
        issue = spec.issue(value)
        if issue is not None:
            errors.append(RowError(line, name, text, issue.msg))
            continue
        inputs[name] = value
    outcome: int | None = None
    procedural: int | None = None
    text = row.get(OUTCOME, "").strip()
    if not has_outcome:
        pass
    elif not text:
        errors.append(RowError(line, OUTCOME, text, "is required (0 or 1)"))
    else:
        try:
            outcome = _binary(text)
        except ValueError as exc:
            errors.append(RowError(line, OUTCOME, text, str(exc)))
    text = row.get("procedural_success", "").strip()
    if text:
        try:
            procedural = _binary(text)
        except ValueError as exc:
            errors.append(RowError(line, "procedural_success", text, str(exc)))
    when: date | None = None
    text = row.get("procedure_date", "").strip()
    if text:
        try:
            when = date.fromisoformat(text)
        except ValueError:
            errors.append(RowError(line, "procedure_date", text, "must be a date YYYY-MM-DD"))
    if errors or (has_outcome and outcome is None):
        return None, errors
    return (
        Lesion(
            line=line,
            inputs=counted(inputs),
            technical_success=outcome,
            procedural_success=procedural,
            operator_id=row.get("operator_id", "").strip() or None,
            procedure_date=when,
            lesion_id=row.get("lesion_id", "").strip() or None,
        ),
        [],
    )


def _first_undecoded(cells: list[str]) -> tuple[int, str]:
    """The first cell with a byte that is not UTF-8, and that byte (never the cell: the errors
    file, written as UTF-8, could not hold it)."""
    for at, cell in enumerate(cells):
        found = _UNDECODED.search(cell)
        if found:
            return at, f"byte 0x{ord(found.group()) - 0xDC00:02X}"
    return len(cells), "a byte"  # in a line the reader dropped


class _Lines:
    """The lines the csv reader takes, counted, and the quotes of the current row: after a row the
    reader refuses (a cell past `csv.field_size_limit()`, 131,072 characters), the rest of a quoted
    cell that spans lines is skipped, so that reading goes on at the next row, not inside the cell.
    ("" in a cell counts two: only a quote left open makes the count odd.) Whether the row has a
    byte that is not UTF-8 is noted too (one search a line; its cells are searched only then)."""

    def __init__(self, text: Iterable[str]) -> None:
        self._text = iter(text)
        self.read = 0
        self.quotes = 0
        self.undecoded = False

    def start_row(self) -> int:
        """The line the next row starts on."""
        self.quotes = 0
        self.undecoded = False
        return self.read + 1

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = next(self._text)
        self.read += 1
        self.quotes += line.count('"')
        if _UNDECODED.search(line):
            self.undecoded = True
        return line

    def skip_open_cell(self) -> None:
        for _ in self:
            if self.quotes % 2 == 0:
                return


def iter_rows(
    text: Iterable[str], source: str, require_outcome: bool = True
) -> Iterator[tuple[Lesion | None, list[RowError], tuple[str, ...]]]:
    """Each data row as (lesion or None, its errors, inputs without a column), streaming.

    `require_outcome=False` (batch scoring of inputs) accepts a file without `technical_success`.

    Raises:
        CohortError: the header cannot be used (see the module notes).
    """
    lines = _Lines(text)
    reader = csv.reader(lines)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise CohortError(f"{source}: not a readable CSV file ({exc})") from None
    if header and lines.undecoded:
        raise CohortError(f"{source}: the header is not UTF-8 text ({_first_undecoded(header)[1]})")
    names = _header(header, source, require_outcome)
    absent = tuple(spec.name for spec in INPUTS if spec.name not in names)
    while True:
        line = lines.start_row()  # a quoted cell may span lines
        try:
            cells = next(reader, None)
        except csv.Error as exc:
            if lines.quotes % 2:
                lines.skip_open_cell()
            yield None, [RowError(line, "(row)", "", f"is not readable CSV ({exc})")], absent
            continue
        if cells is None:
            return
        if lines.undecoded:
            at, byte = _first_undecoded(cells)
            column = names[at] if at < len(names) else "(row)"
            yield None, [RowError(line, column, "", f"is not UTF-8 text ({byte})")], absent
            continue
        if not any(cell.strip() for cell in cells):
            continue  # a blank line between rows is not a lesion
        if len(cells) != len(names):
            # Fewer cells as much as more: a dropped delimiter moves every later value into the
            # wrong column (they were read as unknown, silently, when the row was short).
            count = f"{len(cells)} cell{'s' * (len(cells) != 1)}"
            reason = f"has {count}, header has {len(names)}"
            yield None, [RowError(line, "(row)", "", reason)], absent
            continue
        lesion, errors = _row(line, dict(zip(names, cells, strict=True)), OUTCOME in names)
        yield lesion, errors, absent


def read_cohort(text: str, source: str = "(cohort)") -> Cohort:
    """Parse a whole cohort CSV; bad rows are collected, not raised.

    Raises:
        CohortError: the file as a whole is unusable (see the module notes).
    """
    cohort = Cohort(source)
    for lesion, errors, absent in iter_rows(io.StringIO(text, newline=""), source):
        cohort.absent_inputs = absent
        cohort.errors.extend(errors)
        if lesion is not None:
            cohort.lesions.append(lesion)
    if not cohort.absent_inputs and not cohort.lesions and not cohort.errors:
        # Header only: still report which inputs have no column.
        names = next(csv.reader(io.StringIO(text)), [])
        cohort.absent_inputs = tuple(s.name for s in INPUTS if s.name not in names)
    return cohort
