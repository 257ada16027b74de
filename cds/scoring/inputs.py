"""The canonical score inputs of `docs/spec/inputs.md`, declared as data, and their validation.

Every score is computed from these names, whatever produced them (a JSON file, FHIR data through the
mapping tables, a clinician in the app). A missing key or `None` means unknown. A value of the wrong
type or outside its domain is an `InputError` naming the input and the value: never coerced, never
read as unknown.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from cds.errors import InputError, InputIssue

InputValue = bool | int | float | str
InputKind = Literal["boolean", "enum", "integer", "number"]
InputGroup = Literal["patient", "lesion", "operator"]
"""What an input describes: the patient, the target lesion (with its treatment history and the
planned approach), or the operator. The mapping reads each group from different data."""
Inputs = Mapping[str, InputValue | None]
"""Validated inputs: every canonical name present, `None` where unknown."""


@dataclass(frozen=True)
class InputSpec:
    """One canonical input: its name, kind, domain (`values` for enums, `ge`/`le` for numbers) and
    the group it belongs to."""

    name: str
    kind: InputKind
    meaning: str
    values: tuple[str, ...] = ()
    ge: float | None = None
    le: float | None = None
    group: InputGroup = field(kw_only=True)

    def describe(self) -> str:
        """The domain in words, for error messages and `--help`."""
        if self.kind == "enum":
            return "one of " + ", ".join(self.values)
        if self.kind == "boolean":
            return "true or false"
        noun = "an integer" if self.kind == "integer" else "a number"
        if self.ge is not None and self.le is not None:
            return f"{noun} from {_num(self.ge)} to {_num(self.le)}"
        if self.ge is not None:
            return f"{noun} ≥ {_num(self.ge)}"
        return noun

    def issue(self, value: object) -> InputIssue | None:
        """Why `value` is not valid for this input, or None when it is (None itself is valid)."""
        if value is None:
            return None
        problem = self._problem(value)
        if problem is None:
            return None
        # Built only for a bad value: every input of every case is checked (batch: 22 per order).
        return InputIssue(("inputs", self.name), value, problem, f"must be {self.describe()}")

    def _problem(self, value: object) -> str | None:
        """The issue's type slug for a known value, or None when it is valid."""
        if self.kind == "boolean":
            return None if isinstance(value, bool) else "wrong_type"
        if self.kind == "enum":
            return None if isinstance(value, str) and value in self.values else "wrong_type"
        # JSON true/false are not numbers; integers must be written as integers (70, not 70.0).
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "wrong_type"
        if self.kind == "integer" and not isinstance(value, int):
            return "wrong_type"
        if isinstance(value, float) and not math.isfinite(value):
            return "not_finite"
        if (self.ge is not None and value < self.ge) or (self.le is not None and value > self.le):
            return "out_of_range"
        return None


_JSON_TYPES = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
}
_JSON_TYPES[type(None)] = "null"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _bool(name: str, meaning: str, group: InputGroup) -> InputSpec:
    return InputSpec(name, "boolean", meaning, group=group)


# Order and domains follow the table of docs/spec/inputs.md.
INPUTS: tuple[InputSpec, ...] = (
    InputSpec("age_years", "integer", "age on the day of the procedure", ge=0, group="patient"),
    InputSpec(
        "sex", "enum", "administrative sex", values=("female", "male", "other"), group="patient"
    ),
    _bool("prior_cabg", "any coronary artery bypass grafting before this procedure", "patient"),
    _bool(
        "prior_cabg_target_vessel", "a CABG graft to the target vessel, ≥ 3 months before", "lesion"
    ),
    _bool("prior_mi", "myocardial infarction before this procedure", "patient"),
    InputSpec(
        "target_vessel",
        "enum",
        "vessel of the target occlusion",
        values=("LM", "LAD", "LCX", "RCA", "RAMUS", "GRAFT"),
        group="lesion",
    ),
    InputSpec(
        "stump",
        "enum",
        "proximal cap shape (no_stump = not visible)",
        values=("tapered", "blunt", "no_stump"),
        group="lesion",
    ),
    _bool(
        "proximal_cap_ambiguity",
        "proximal cap location cannot be determined unequivocally",
        "lesion",
    ),
    InputSpec(
        "calcification",
        "enum",
        "worst calcification of the occlusion entry/body",
        values=("none", "mild", "moderate", "severe"),
        group="lesion",
    ),
    _bool("bend_gt_45_in_occlusion", "a bend > 45° within the occluded segment", "lesion"),
    InputSpec(
        "tortuosity",
        "enum",
        "tortuosity of the target vessel",
        values=("none", "mild", "moderate", "severe", "unseen"),
        group="lesion",
    ),
    InputSpec(
        "occlusion_length_mm", "number", "occlusion length in millimetres", ge=0, group="lesion"
    ),
    _bool(
        "distal_vessel_disease",
        "significant disease beyond the occlusion or distal lumen < 2 mm",
        "lesion",
    ),
    InputSpec("rentrop_grade", "integer", "collateral filling grade", ge=0, le=3, group="lesion"),
    _bool(
        "interventional_collaterals",
        "a collateral usable for a retrograde approach exists",
        "lesion",
    ),
    _bool(
        "in_stent_occlusion", "occlusion inside a stent of the target vessel, > 3 months", "lesion"
    ),
    _bool("ostial_location", "occlusion starts at the vessel's ostium", "lesion"),
    _bool("retry_lesion", "an earlier CTO-PCI attempt on this lesion failed", "lesion"),
    _bool("retrograde_approach", "retrograde approach planned or used", "lesion"),
    InputSpec(
        "operator_annual_cto_volume",
        "number",
        "operator's average CTO-PCIs per year as primary operator",
        ge=0,
        group="operator",
    ),
    InputSpec(
        "operator_cto_years",
        "number",
        "years of CTO-PCI practice as primary operator (whole years, > 6 months rounds up)",
        ge=0,
        group="operator",
    ),
    InputSpec(
        "operator_last_year_success_rate",
        "number",
        "technical success rate of the operator's CTO-PCIs in the previous year",
        ge=0,
        le=1,
        group="operator",
    ),
)

INPUT_SPECS: Mapping[str, InputSpec] = {spec.name: spec for spec in INPUTS}


def inputs_in(group: InputGroup) -> tuple[str, ...]:
    """The canonical inputs of one group, in contract order."""
    return tuple(spec.name for spec in INPUTS if spec.group == group)


# Numbers written as text (a CSV cell, a form field) in HTML's "valid floating-point number" form,
# ASCII only: Python's int()/float() also read "1_000", " 5 ", "+3", "٣" and full-width digits,
# which nobody wrote as a number and which must not reach a score or the EHR converted.
_INTEGER_TEXT = re.compile(r"-?[0-9]{1,18}")
_NUMBER_TEXT = re.compile(
    r"-?(?:[0-9]{1,18}(?:\.[0-9]{1,18})?|\.[0-9]{1,18})(?:[eE][+-]?[0-9]{1,3})?"
)
_NONZERO = re.compile(r"[1-9]")


def number_from_text(spec: InputSpec, text: str) -> int | float | None:
    """`text` as the number input `spec` means, or None when it is not exactly a number of that
    kind: an integer for "integer" (`3.0` is not), an int or a float for "number" ("25" → 25, so
    an error quotes -1, not -1.0). Never a value the text does not say: "1e-400" and "1e309" fall
    outside a float and are None, not 0 or infinity; "-0.0" is 0. The range is `spec.issue`'s."""
    if _INTEGER_TEXT.fullmatch(text):
        return int(text)
    if spec.kind != "number" or not _NUMBER_TEXT.fullmatch(text):
        return None
    value = float(text) + 0.0  # + 0.0: "-0.0" is 0
    mantissa = text.partition("e")[0].partition("E")[0]
    if not math.isfinite(value) or (value == 0.0 and _NONZERO.search(mantissa)):
        return None
    return value


def parse_inputs(raw: object) -> dict[str, InputValue | None]:
    """Validate a JSON-like object of inputs; return every canonical name, `None` where unknown.

    Raises:
        InputError: with one issue per bad key (not an object, unknown key, wrong type, out of range).
    """
    if not isinstance(raw, Mapping):
        kind = _JSON_TYPES.get(type(raw), type(raw).__name__)
        raise InputError(
            [InputIssue(("inputs",), raw, "not_an_object", f"must be a JSON object, not {kind}")]
        )
    issues: list[InputIssue] = []
    for key in raw:
        if key not in INPUT_SPECS:
            issues.append(
                InputIssue(
                    ("inputs", str(key)), raw[key], "unknown_input", "is not a canonical input"
                )
            )
    for spec in INPUTS:
        issue = spec.issue(raw.get(spec.name))
        if issue is not None:
            issues.append(issue)
    if issues:
        raise InputError(issues)
    return counted({spec.name: raw.get(spec.name) for spec in INPUTS})


def counted(values: dict[str, InputValue | None]) -> dict[str, InputValue | None]:
    """Checked values as the scores count them: `operator_cto_years` in whole years. Every source
    of inputs applies it (`parse_inputs`; a CSV row, cds/validation/cohort.py)."""
    years = values.get("operator_cto_years")
    if isinstance(years, int | float) and not isinstance(years, bool):
        values["operator_cto_years"] = whole_years(years)
    return values


def whole_years(years: float) -> int:
    """Years of CTO-PCI practice as the spec counts them: whole years, a remainder of more than six
    months adds one (docs/spec/inputs.md, `operator_cto_years`; docs/spec/scores.md §1,
    `operator_years_ge_5`). 4.6 → 5, 4.5 → 4. Applied on the way in, so every source (JSON file,
    FHIR mapping, the app) is counted alike and the ≥ 5 item sees what the paper meant."""
    whole = math.floor(years)
    return whole + 1 if years - whole > 0.5 else whole
