"""The site-editable mapping tables in `mappings/`, loaded and validated once at start-up.

Files (defaults shipped in `mappings/`, a site directory may override each):

- `codes.csv`: one row per (concept, resource, element, system, code): what a code found in a FHIR
  element means for a score input. Columns: id, concept, resource, element, system, code, match,
  meaning, evidence, verified, enabled, comment. The system `local` stands for the local CodeSystem,
  `rules.local_system`: one URL, set in rules.yaml, used by the rows, the cards and the export.
- `operators.csv`: the site registry of operator experience, keyed by NPI or Practitioner id; its
  `as_of` (the day the figures were checked) may not be after today (UTC; one day of grace for time
  zones ahead of it): checked at the load, it stays in the past while the tables serve.
- `rules.yaml`: thresholds and policies (CABG ≥ 3 months, success rule, LAD group, look-back windows).

A site directory's `codes.csv` merges by the natural key (concept, resource, element, system, code):
a site row replaces the default row with the same key, `enabled=false` disables it, new keys add
rows. Its `operators.csv` merges by NPI / Practitioner id; its `rules.yaml` overrides keys. A bad row
fails the load with `file:line: reason`.

Every file present in a directory must be a UTF-8 regular file (links followed) of at most
`MAX_TABLE_BYTES`: a broken link, a link loop, a FIFO or a device fails the load naming it, never
leaves the defaults alone or blocks. rules.yaml is read with strict types, unique keys, no aliases
and bounded nesting (cds/strict_yaml.py); its day counts are at most `MAX_DAYS`.

`MappingTables.version` names what was loaded: a digest of the six files' bytes (absent ones
included), not of their paths, so `cto-cds mappings check DIR` on an engineer's copy prints the
version a pod reports for the same files at /site/mappings (`/readyz`, the
`cto_cds_mapping_tables_info` metric, the start-up log) and each card's audit row keeps the version
that mapped it.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import logging
import os
import re
import stat
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Literal, TypeVar, cast, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from cds.defaults import MAPPINGS_DIR
from cds.errors import ConfigError
from cds.mapping.codes import normalize_code, normalize_system
from cds.scoring.inputs import INPUT_SPECS
from cds.strict_yaml import StrictLoader

DEFAULT_DIR = MAPPINGS_DIR
LOCAL = "local"
"""codes.csv `system` for the local CodeSystem: replaced by `rules.local_system` at load."""

Evidence = Literal["lesion", "patient", "claim"]
Element = Literal["code", "bodySite", "value", "outcome", "component"]
Match = Literal["exact", "prefix"]
ResourceName = Literal["Condition", "Procedure", "Observation", "ServiceRequest", "*"]

# Concepts that are not canonical inputs but feed derivations (docs/spec/terminology.md).
AUX_CONCEPTS: dict[str, str] = {
    "cto_pci": "the code marks a CTO-PCI (order or procedure)",
    "prior_pci": "a coronary PCI or stent: the record shows a stent may be present",
    "cabg": "a CABG procedure or its consequence (graft present)",
    "vessel": "a body site in a coronary vessel group: meaning = LM, LAD, LCX, RCA, RAMUS or GRAFT",
    "ostium": "a body site or qualifier meaning the ostium: meaning = true",
    "outcome": "Procedure.outcome: meaning = success, partial or failure",
    "in_stent_restenosis": "a lesion finding of in-stent restenosis on the coded segment",
}
# Aux concepts that are lesion findings with a value (terminology.md §4.6: NCDR 100013013 is a
# valueBoolean question, so `false` must not read as present).
AUX_VALUE_READINGS: dict[str, tuple[str, ...]] = {"in_stent_restenosis": ("true", "boolean")}
VESSELS = ("LM", "LAD", "LCX", "RCA", "RAMUS", "GRAFT")
OUTCOMES = ("success", "partial", "failure")
# How an Observation's value is read for a lesion input (element = code).
VALUE_READINGS = re.compile(
    r"^(boolean(:[a-z_]+)?|quantity:(mm|cm|%|1)|integer|coded|present(:[a-z_0-9]+)?)$"
)

CODE_COLUMNS = (
    "id",
    "concept",
    "resource",
    "element",
    "system",
    "code",
    "match",
    "meaning",
    "evidence",
    "verified",
    "enabled",
    "comment",
)
OPERATOR_COLUMNS = (
    "npi",
    "practitioner_id",
    "annual_cto_volume",
    "cto_years",
    "last_year_success_rate",
    "as_of",
    "comment",
)


@dataclass(frozen=True)
class CodeRow:
    """One row of codes.csv, system and code normalised."""

    id: str
    concept: str
    resource: str
    element: str
    system: str
    code: str
    match: str
    meaning: str
    evidence: str
    verified: str
    enabled: bool
    comment: str
    origin: str  # file:line, for messages

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return (self.concept, self.resource, self.element, self.system, self.code)


@dataclass(frozen=True)
class OperatorEntry:
    npi: str | None
    practitioner_id: str | None
    annual_cto_volume: float | None
    cto_years: float | None
    last_year_success_rate: float | None
    as_of: str | None
    origin: str


MAX_DAYS = 36_500
"""Upper bound of every day count in rules.yaml (a century): beyond it a window reaches before
year 1 and every scoring failed with an OverflowError instead of the load."""


class SuccessRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    partial_counts_as_success: bool = False


class OperatorRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    last_year_days: int = Field(365, ge=1, le=MAX_DAYS)
    # Xiao 2021 §2.2: whole years; a remainder of more than 6 months counts as one more year.
    round_up_after_months: int = Field(6, ge=0, le=12)
    primary_function_codes: tuple[StrictStr, ...] = Field((), strict=False)  # YAML gives a list


class Rules(BaseModel):
    """rules.yaml: thresholds and policies that are not code lists.

    Strict types: YAML reads `yes` as true and a lax model took true as 1 and '30' as 30, so a
    slip changed a threshold instead of failing the load."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    # terminology.md §4.10: the local CodeSystem; its base (before /CodeSystem/) names the exports.
    local_system: str = Field(
        "http://cto-cds.org/fhir/CodeSystem/cto-lesion",
        pattern=r"^https?://\S+/CodeSystem/[^/\s]+$",
    )
    cabg_min_days_before: int = Field(90, ge=0, le=MAX_DAYS)  # scores.md §1: CABG ≥ 3 months before
    # inputs.md: an MI during the index stay is not prior; MIs this many days or fewer before the
    # order are taken as the index stay (0 = only on or after the order date).
    prior_mi_exclude_days: int = Field(0, ge=0, le=MAX_DAYS)
    retry_counts_partial_success: bool = False  # terminology.md §4.8: site option
    lm_ramus_as_lad: bool = False  # scores.md: LM and ramus count as non-LAD by default
    cl_score_any_prior_cabg: bool = False  # scores.md §5: site setting, default target vessel
    success: SuccessRule = SuccessRule()
    operator: OperatorRules = OperatorRules()


SHORT_PREFIX = 3
"""A prefix row with a shorter code (after normalisation) is loaded with a warning: ICD-10-CM `I2`
is every ischaemic heart disease. The shipped prefixes have 3 characters or more."""
log = logging.getLogger("cds.mapping")

LOOKUP_MEMO = 50_000
T = TypeVar("T")


@dataclass(frozen=True)
class MappingTables:
    rows: tuple[CodeRow, ...]
    operators: tuple[OperatorEntry, ...]
    rules: Rules
    sources: tuple[str, ...] = ()
    version: str = ""
    """`tables_version` of the files loaded ("" for tables built in code)."""
    _exact: Mapping[tuple[str, str, str], tuple[CodeRow, ...]] = field(
        default_factory=dict, repr=False
    )
    _prefix: Mapping[tuple[str, str], tuple[CodeRow, ...]] = field(default_factory=dict, repr=False)
    _memo: dict[tuple[str, str, str, str], tuple[CodeRow, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    """`lookup` answers by coding: the same few hundred codings come back on every hook call."""
    _derived: dict[str, object] = field(default_factory=dict, init=False, repr=False, compare=False)
    """What other modules derive from the tables once (`derived`), e.g. the career search's codes."""

    def derived(self, key: str, compute: Callable[[MappingTables], T]) -> T:
        """`compute(self)`, computed once per tables and kept (the tables never change)."""
        if key not in self._derived:
            self._derived[key] = compute(self)
        return cast(T, self._derived[key])

    def lookup(
        self, resource: str, element: str, system: str | None, code: str | None
    ) -> list[CodeRow]:
        """Enabled rows matching a coding found in `resource.element`."""
        return list(self.matches(resource, element, system, code))

    def matches(
        self, resource: str, element: str, system: str | None, code: str | None
    ) -> tuple[CodeRow, ...]:
        """`lookup` as the memo keeps it, not copied: the mapping calls it ≈ 40–270 times a record."""
        if not system or not code:
            return ()
        key = (resource, element, system, code)
        known = self._memo.get(key)
        if known is None:
            known = tuple(self._lookup(resource, element, system, code))
            if len(self._memo) >= LOOKUP_MEMO:  # codes come from EHRs: keep the memo bounded
                self._memo.clear()
            self._memo[key] = known
        return known

    def _lookup(self, resource: str, element: str, system: str, code: str) -> list[CodeRow]:
        system = normalize_system(system)
        code = normalize_code(system, code)
        found = [r for r in self._exact.get((element, system, code), ()) if _fits(r, resource)]
        for row in self._prefix.get((element, system), ()):
            if code.startswith(row.code) and _fits(row, resource):
                found.append(row)
        return found

    def operator_entry(self, npi: str | None, practitioner_id: str | None) -> OperatorEntry | None:
        for entry in self.operators:
            if (npi and entry.npi == npi) or (
                practitioner_id and entry.practitioner_id == practitioner_id
            ):
                return entry
        return None


def _fits(row: CodeRow, resource: str) -> bool:
    return row.resource in ("*", resource)


def _index(
    rows: Iterable[CodeRow],
) -> tuple[
    dict[tuple[str, str, str], tuple[CodeRow, ...]], dict[tuple[str, str], tuple[CodeRow, ...]]
]:
    exact: dict[tuple[str, str, str], list[CodeRow]] = {}
    prefix: dict[tuple[str, str], list[CodeRow]] = {}
    for row in rows:
        if not row.enabled:
            continue
        if row.match == "exact":
            exact.setdefault((row.element, row.system, row.code), []).append(row)
        else:
            prefix.setdefault((row.element, row.system), []).append(row)
    return ({k: tuple(v) for k, v in exact.items()}, {k: tuple(v) for k, v in prefix.items()})


def _choice(value: str, allowed: Iterable[str], column: str) -> str:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{column} {value!r} is not one of {', '.join(allowed)}")
    return value


def _check_meaning(concept: str, element: str, meaning: str) -> None:
    if concept == "vessel":
        _choice(meaning, VESSELS, "meaning")
    elif concept == "outcome":
        _choice(meaning, OUTCOMES, "meaning")
    elif concept in AUX_VALUE_READINGS and element in ("code", "component"):
        _choice(meaning, AUX_VALUE_READINGS[concept], "meaning")
    elif concept in AUX_CONCEPTS or element in ("bodySite", "outcome"):
        _choice(meaning, ("true",), "meaning")
    elif element in ("code", "component"):
        if concept in ("prior_cabg", "prior_mi") and meaning == "true":
            return
        if not VALUE_READINGS.match(meaning):
            raise ValueError(
                f"meaning {meaning!r} is not a value reading (boolean, boolean:<value>, "
                "quantity:mm|cm|%|1, integer, coded, present:<value>)"
            )
        target = (
            meaning.split(":", 1)[1]
            if ":" in meaning and not meaning.startswith("quantity")
            else None
        )
        if target is not None:
            _check_value(concept, target)
    else:  # element == "value": the coded answer's canonical value
        _check_value(concept, meaning)


def _check_value(concept: str, value: str) -> None:
    spec = INPUT_SPECS.get(concept)
    if spec is None:
        raise ValueError(f"concept {concept!r} takes no coded value")
    if spec.kind == "enum":
        _choice(value, spec.values, "meaning")
    elif spec.kind == "boolean":
        _choice(value, ("true", "false"), "meaning")
    elif spec.kind == "integer" and (not value.isdigit() or spec.issue(int(value)) is not None):
        raise ValueError(f"meaning {value!r} is not a valid {concept}")


def _visible(column: str, value: str) -> None:
    """Refuse control, format and space characters (a zero-width space pasted with a code):
    no EHR sends the code with them, so the row would add a dead key, not override the default."""
    for ch in value:
        if unicodedata.category(ch)[0] in "CZ" and unicodedata.category(ch) != "Co":
            raise ValueError(
                f"{column} {value!r} contains U+{ord(ch):04X} "
                f"({unicodedata.name(ch, 'a control character')}), which no code holds"
            )


def _parse_code_row(raw: Mapping[str, str], origin: str) -> CodeRow:
    def col(name: str) -> str:
        return (raw.get(name) or "").strip()

    concept = col("concept")
    if concept not in INPUT_SPECS and concept not in AUX_CONCEPTS:
        raise ValueError(
            f"concept {concept!r} is neither a canonical input nor one of {', '.join(AUX_CONCEPTS)}"
        )
    resource = _choice(col("resource"), get_args(ResourceName), "resource")
    element = _choice(col("element"), get_args(Element), "element")
    system_raw, code_raw = col("system"), col("code")
    if not system_raw or not code_raw:
        raise ValueError("system and code are required")
    if any(ch.isspace() for ch in code_raw):
        raise ValueError(f"code {code_raw!r} contains white space")
    system = LOCAL if system_raw == LOCAL else normalize_system(system_raw)
    if system != LOCAL and not re.match(r"^(https?://|urn:)", system):
        raise ValueError(f"system {system_raw!r} is not a URI or urn:oid")
    for name, value in (("system", system_raw), ("code", code_raw)):
        _visible(name, value)
    code = normalize_code(system, code_raw)
    if not code:  # "." once ICD dots go: an empty prefix would match every code of the system
        raise ValueError(f"code {code_raw!r} is empty once normalised (ICD codes lose their dots)")
    meaning = col("meaning")
    _check_meaning(concept, element, meaning)
    verified = col("verified")
    if verified == "NV":
        raise ValueError("verified NV rows are never shipped (terminology.md: grades)")
    enabled_raw = col("enabled").lower() or "true"
    enabled = _choice(enabled_raw, ("true", "false"), "enabled") == "true"
    row_id = col("id")
    if not re.match(r"^[A-Za-z0-9_.:\-]+$", row_id):
        raise ValueError(f"id {row_id!r} must be letters, digits and _.:-")
    return CodeRow(
        id=row_id,
        concept=concept,
        resource=resource,
        element=element,
        system=system,
        code=code,
        match=_choice(col("match") or "exact", get_args(Match), "match"),
        meaning=meaning,
        evidence=_choice(col("evidence"), get_args(Evidence), "evidence"),
        verified=_choice(verified or "V", ("V", "V1", "site"), "verified"),
        enabled=enabled,
        comment=col("comment"),
        origin=origin,
    )


MAX_TABLE_BYTES = 5 * 1024 * 1024
"""Largest table file read (the shipped codes.csv is ≈ 40 KB; a ConfigMap holds at most 1 MiB):
parsing takes ≈ 14 times a file's size in memory, and a pod has 384 MiB."""


def _nonblocking(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NONBLOCK)  # opening a FIFO would wait for a writer


def read_table(path: Path) -> bytes:
    """A table file's bytes: a regular file (after links), at most MAX_TABLE_BYTES of it read, so
    that a FIFO, a device such as /dev/zero or a huge file fails the load instead of hanging it."""
    try:
        with open(path, "rb", opener=_nonblocking) as file:
            mode = os.fstat(file.fileno()).st_mode
            if not stat.S_ISREG(mode):
                raise ConfigError(f"{path}: is not a regular file ({_kind(mode)})")
            content = file.read(MAX_TABLE_BYTES + 1)  # not the size stat says: a file can grow
    except IsADirectoryError as exc:  # open() itself refuses a directory
        raise ConfigError(f"{path}: is not a regular file (a directory)") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: {_unreadable(path, exc)}") from exc
    if len(content) > MAX_TABLE_BYTES:
        raise ConfigError(f"{path}: larger than the {MAX_TABLE_BYTES} bytes a table file may hold")
    return content


def _unreadable(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "is a link loop"
    if exc.errno == errno.ENOENT and path.is_symlink():
        return f"is a broken link (to {os.readlink(path)})"
    return f"cannot read: {exc.strerror or exc}"


def present(path: Path) -> bool:
    """Whether a directory holds an entry of this name. A link counts whatever it points to: a
    broken ConfigMap mount must fail the load, not leave the tables as the defaults alone."""
    try:
        path.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return False
    return True


def _kind(mode: int) -> str:
    kinds = {stat.S_ISDIR: "a directory", stat.S_ISFIFO: "a FIFO", stat.S_ISSOCK: "a socket"}
    kinds |= {stat.S_ISCHR: "a character device", stat.S_ISBLK: "a block device"}
    return next((name for test, name in kinds.items() if test(mode)), "not a file")


def _text(path: Path) -> str:
    """A table file as UTF-8 text (a BOM allowed: Excel writes "CSV UTF-8" with one)."""
    content = read_table(path)
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:  # Latin-1 or UTF-16: named, with the line it is on
        line = content.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}:{line}: not UTF-8 (byte 0x{content[exc.start]:02x}): save the file as UTF-8"
        ) from exc


def _read_csv(path: Path, columns: tuple[str, ...]) -> list[tuple[str, dict[str, str]]]:
    text = _text(path)
    lines = [
        (n, line)
        for n, line in enumerate(text.splitlines(), 1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        raise ConfigError(f"{path}:1: empty file, expected the header {','.join(columns)}")
    # One CSV record per physical line, so every message names the line (no multi-line fields).
    parsed: list[tuple[int, list[str]]] = []
    for number, line in lines:
        try:
            parsed.append((number, next(csv.reader([line], strict=True))))
        except csv.Error as exc:
            raise ConfigError(f"{path}:{number}: bad CSV quoting: {exc}") from exc
    header = [h.strip() for h in parsed[0][1]]
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:  # the row dict would keep the last column of the name, silently
        raise ConfigError(f"{path}:{lines[0][0]}: header: {', '.join(repeated)} repeated")
    missing = [c for c in columns if c not in header]
    unknown = [h for h in header if h not in columns]
    if missing or unknown:
        raise ConfigError(
            f"{path}:{lines[0][0]}: header: missing {missing or '-'}, unknown {unknown or '-'}"
        )
    rows = []
    for number, values in parsed[1:]:
        if len(values) != len(header):
            raise ConfigError(f"{path}:{number}: {len(values)} fields, header has {len(header)}")
        rows.append((f"{path}:{number}", dict(zip(header, values, strict=True))))
    return rows


def load_codes(path: Path) -> list[CodeRow]:
    rows: list[CodeRow] = []
    ids: dict[str, str] = {}
    keys: dict[tuple[str, ...], str] = {}
    for origin, raw in _read_csv(path, CODE_COLUMNS):
        try:
            row = _parse_code_row(raw, origin)
        except ValueError as exc:
            raise ConfigError(f"{origin}: {exc}") from exc
        if row.match == "prefix" and len(row.code) < SHORT_PREFIX:
            log.warning(
                "%s: prefix %r matches every %s code starting so: check it is meant",
                origin,
                row.code,
                row.system,
            )
        if row.id in ids:
            raise ConfigError(f"{origin}: id {row.id!r} already used at {ids[row.id]}")
        if row.key in keys:
            raise ConfigError(
                f"{origin}: same concept/resource/element/system/code as {keys[row.key]}"
            )
        ids[row.id] = keys[row.key] = origin
        rows.append(row)
    return rows


# Registry bounds (documented in operators.csv): far above any operator's figures, so that only a
# slip (a rate in percent, a digit too many) fails.
MAX_ANNUAL_CTO_VOLUME = 1000
MAX_CTO_YEARS = 80
_DECIMAL = re.compile(r"[0-9]{1,9}(\.[0-9]{1,9})?|\.[0-9]{1,9}")
"""Digits 0-9 and one dot: float() also takes inf, nan, 1e400, 1_000 and other scripts' digits."""
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _shown(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:40] + "…")


def _number(value: str, column: str, high: float) -> float | None:
    text = value.strip()
    if not text:
        return None
    if not _DECIMAL.fullmatch(text.removeprefix("-")):
        raise ValueError(f"{column} {_shown(text)} is not a number (digits 0-9 and a dot)")
    number = float(text)
    if not 0 <= number <= high:
        raise ValueError(f"{column} {_shown(text)} is outside 0..{high:g}")
    return number


AS_OF_AHEAD = timedelta(days=1)
"""How far past today (UTC) an `as_of` may be: a site at UTC+14 writes tomorrow's UTC date."""


def _day(value: str, today: date) -> str | None:
    text = value.strip()
    if not text:
        return None
    try:  # fromisoformat alone takes 20261101 and week dates too
        day = date.fromisoformat(text) if _ISO_DAY.fullmatch(text) else None
    except ValueError:
        day = None
    if day is None:
        raise ValueError(f"as_of {_shown(text)} is not a date YYYY-MM-DD")
    # The day the figures were checked has come: one ahead is a slip (2062 for 2026) that the
    # card would show a cath-lab team as is. Tables are read once, so a row passing stays past.
    if day > today + min(AS_OF_AHEAD, date.max - today):
        raise ValueError(
            f"as_of {_shown(text)} is in the future (today is {today.isoformat()} UTC):"
            " the date the figures were checked"
        )
    return day.isoformat()


def load_operators(path: Path, today: date | None = None) -> list[OperatorEntry]:
    """The registry rows; `today` (UTC when None) bounds `as_of`."""
    today = today or datetime.now(UTC).date()
    entries = []
    seen: dict[str, str] = {}
    for origin, raw in _read_csv(path, OPERATOR_COLUMNS):
        try:
            npi = raw["npi"].strip() or None
            pid = raw["practitioner_id"].strip() or None
            _visible("practitioner_id", pid or "")
            if npi is None and pid is None:
                raise ValueError("npi or practitioner_id is required")
            if npi is not None and not re.fullmatch(r"[0-9]{10}", npi):  # `\d`: any script's
                raise ValueError(f"npi {npi!r} is not 10 digits")
            # A repeated operator would be shadowed by the first row: refuse it.
            for key in [k for k in (npi and f"npi {npi}", pid and f"practitioner_id {pid}") if k]:
                if key in seen:
                    raise ValueError(f"{key} already used at {seen[key]}")
                seen[key] = origin
            entries.append(
                OperatorEntry(
                    npi=npi,
                    practitioner_id=pid,
                    annual_cto_volume=_number(
                        raw["annual_cto_volume"], "annual_cto_volume", MAX_ANNUAL_CTO_VOLUME
                    ),
                    cto_years=_number(raw["cto_years"], "cto_years", MAX_CTO_YEARS),
                    last_year_success_rate=_number(
                        raw["last_year_success_rate"], "last_year_success_rate", 1
                    ),
                    as_of=_day(raw["as_of"], today),
                    origin=origin,
                )
            )
        except ValueError as exc:
            raise ConfigError(f"{origin}: {exc}") from exc
    return entries


def load_rules(path: Path, base: Mapping[str, object] | None = None) -> dict[str, object]:
    text = _text(path)
    try:
        data = yaml.load(text, Loader=StrictLoader) or {}
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise ConfigError(f"{path}:{line}: invalid YAML: {exc.problem}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: cannot read YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: expected a mapping of rule names")
    merged = dict(base or {})
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}  # type: ignore[dict-item]
        else:
            merged[key] = value
    return merged


def _yaml_line(path: Path, loc: tuple[int | str, ...]) -> int | None:
    """The line of the deepest key of `loc` present in a YAML file, for messages."""
    try:
        node = yaml.compose(_text(path), Loader=StrictLoader)
    except (ConfigError, yaml.YAMLError):
        return None
    line = None
    for part in loc:
        if not isinstance(node, yaml.MappingNode):
            break
        found = next((kv for kv in node.value if kv[0].value == str(part)), None)
        if found is None:
            break
        line, node = found[0].start_mark.line + 1, found[1]
    return line


def _rules(data: Mapping[str, object], paths: list[Path]) -> Rules:
    """Validate merged rules; a bad key is reported in the last file that sets it (site first)."""
    try:
        return Rules.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        for path in reversed(paths):
            line = _yaml_line(path, first["loc"])
            if line is not None:
                raise ConfigError(f"{path}:{line}: {where}: {first['msg']}") from exc
        raise ConfigError(f"{paths[-1]}: {where}: {first['msg']}") from exc


def merge_codes(defaults: list[CodeRow], site: list[CodeRow]) -> list[CodeRow]:
    by_key = {row.key: row for row in defaults}
    for row in site:
        by_key[row.key] = row
    merged = list(by_key.values())
    seen: dict[str, str] = {}
    for row in merged:
        if row.id in seen:
            raise ConfigError(f"{row.origin}: id {row.id!r} already used at {seen[row.id]}")
        seen[row.id] = row.origin
    return merged


TABLE_FILES = ("codes.csv", "operators.csv", "rules.yaml")
VERSION_LENGTH = 16
"""Hex digits of the SHA-256 kept: a name to compare, not a signature."""


def tables_version(default_dir: Path, site_dir: Path | None) -> str:
    """The digest of what the two directories hold: each file's layer, name and bytes, or that it
    is absent. Paths do not count: the same files give the same version wherever they are."""
    digest = hashlib.sha256()
    for layer, directory in (("defaults", default_dir), ("site", site_dir)):
        for name in TABLE_FILES:
            path = directory / name if directory is not None else None
            content = read_table(path) if path is not None and present(path) else None
            size = "absent" if content is None else str(len(content))
            digest.update(f"{layer}/{name}\0{size}\0".encode())
            digest.update(content or b"")
    return digest.hexdigest()[:VERSION_LENGTH]


def load_tables(
    site_dir: Path | None = None, default_dir: Path = DEFAULT_DIR, today: date | None = None
) -> MappingTables:
    """Load the defaults and merge a site directory over them; ConfigError names file and line.
    `today` (UTC when None) is the day a registry `as_of` may not be after.

    The files' version is taken before and after reading them: a site directory replaced
    meanwhile (a ConfigMap update) is an error to retry, never tables labelled with the version
    of other files."""
    if site_dir is not None and not site_dir.is_dir():
        raise ConfigError(f"{site_dir}: mappings directory does not exist")
    version = tables_version(default_dir, site_dir)
    tables = _load_tables(site_dir, default_dir, today or datetime.now(UTC).date())
    if tables_version(default_dir, site_dir) != version:
        raise ConfigError(
            f"{site_dir or default_dir}: the mapping files changed while they were read; load again"
        )
    return replace(tables, version=version)


def _load_tables(site_dir: Path | None, default_dir: Path, today: date) -> MappingTables:
    rows = load_codes(default_dir / "codes.csv")
    operators = load_operators(default_dir / "operators.csv", today)
    rules_data = load_rules(default_dir / "rules.yaml")
    sources = [str(default_dir)]
    rules_paths = [default_dir / "rules.yaml"]
    if site_dir is not None:
        sources.append(str(site_dir))
        if present(site_dir / "codes.csv"):
            rows = merge_codes(rows, load_codes(site_dir / "codes.csv"))
        if present(site_dir / "operators.csv"):
            site_ops = load_operators(site_dir / "operators.csv", today)
            site_keys = {(o.npi, o.practitioner_id) for o in site_ops}
            operators = site_ops + [
                o for o in operators if (o.npi, o.practitioner_id) not in site_keys
            ]
        if present(site_dir / "rules.yaml"):
            rules_data = load_rules(site_dir / "rules.yaml", rules_data)
            rules_paths.append(site_dir / "rules.yaml")
    rules = _rules(rules_data, rules_paths)
    rows = [replace(row, system=rules.local_system) if row.system == LOCAL else row for row in rows]
    exact, prefix = _index(rows)
    return MappingTables(
        rows=tuple(rows),
        operators=tuple(operators),
        rules=rules,
        sources=tuple(sources),
        _exact=exact,
        _prefix=prefix,
    )
