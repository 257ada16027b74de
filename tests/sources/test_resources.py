"""The lean models: `ref` computed once per resource and kept, never a model field; FHIR dates
and dateTimes checked in Rust exactly as Python's `re.fullmatch` checks them."""

from __future__ import annotations

import calendar
import json
import re
from datetime import date
from typing import Any, get_args, get_type_hints

import pytest

from cds.sources.resources import (
    _DATED,
    DATE_PATTERN,
    DATETIME_PATTERN,
    MODELS,
    Condition,
    FhirDate,
    FhirDateTime,
    Patient,
    Period,
    Procedure,
    ResourceProblem,
    parse_resource,
    parse_resource_json,
)


def test_ref_is_type_and_id_kept_after_the_first_read() -> None:
    condition = Condition.model_validate({"resourceType": "Condition", "id": "c-1"})
    assert "ref" not in condition.__dict__
    assert condition.ref == "Condition/c-1"
    assert condition.__dict__["ref"] == "Condition/c-1"  # kept: the mapping reads it per order
    assert condition.ref is condition.ref


def test_ref_without_an_id_says_so() -> None:
    assert Procedure.model_validate({"resourceType": "Procedure"}).ref == "Procedure/(no id)"


def test_ref_is_not_a_field_and_does_not_change_equality_or_dumps() -> None:
    raw = {"resourceType": "Condition", "id": "c-2"}
    read, unread = parse_resource(raw), parse_resource(raw)
    assert isinstance(read, Condition)
    assert isinstance(unread, Condition)
    assert read.ref == "Condition/c-2"
    assert "ref" not in Condition.model_fields
    assert read == unread
    assert "ref" not in read.model_dump()


# --- dates: checked in Rust, as Python's fullmatch would -------------------------------------

DATES = [
    "2019",
    "2019-02",
    "2019-02-28",
    "2019-02-30",
    "2019-13",
    "2019-00",
    "2019-1",
    "19",
    "2019-02-28\n",
    "\n2019",
    " 2019",
    "2019 ",
    "2019-02-28T10:00",
    "20190228",
    "\u0662\u0660\u0661\u0669",
    "\u0662\u0660\u0661\u0669-02",  # Arabic-Indic digits: \d is Unicode
    "２０１９",
    "2019-02-3\u0661",
    "",
    # the form, but not a day: checked after the pattern (`real_day`)
    "2019-02-29",
    "2020-02-29",
    "1900-02-29",
    "2000-02-29",
    "2019-04-31",
    "2019-04-30",
    "2019-12-31",
    "0000",
    "0000-01-01",
    "0001-01-01",
    "9999-11",
    "9999-12",
    "9999-12-31",
    "9999",
]
DATETIMES = [
    *DATES,
    "2019-02-28T10:00:00Z",
    "2019-02-28T10:00:00+01:00",
    "2019-02-28T10:00:00.123456-05:30",
    "2019-02-28T24:00:00Z",
    "2019-02-28T23:59:60Z",
    "2019-02-28T10:00:00",
    "2019-02-28T10:00Z",
    "2019-02-28T10:00:00+14:00",
    "2019-02-28T10:00:00+14:01",
    "2019-02-28T10:00:00+13:59",
    "2019-02-28T10:00:00.Z",
    "2019-02-28T10:00:00Z\n",
    "2019-02-28t10:00:00z",
    "2019-02-28T10:00:00+01:00\n",
    "2019-02-28T\u0661\u0660:00:00Z",
]


def days_exist(value: str) -> bool:
    """The first and the last day a date of the FHIR form can mean, both in the calendar."""
    year = int(value[:4])
    month = int(value[5:7]) if len(value) >= 7 else None
    try:
        if month is None:
            date(year, 1, 1), date(year, 12, 31)
        elif len(value) < 10:
            date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])
            date(year + month // 12, month % 12 + 1, 1)  # the day after: how its end is found
        else:
            date(year, month, int(value[8:10]))
    except (ValueError, calendar.IllegalMonthError):
        return False
    return True


@pytest.mark.parametrize("value", DATES)
def test_a_date_is_accepted_exactly_when_python_fullmatch_accepts_it_and_its_day_exists(
    value: str,
) -> None:
    form = re.fullmatch(DATE_PATTERN.removeprefix("^").removesuffix("$"), value) is not None
    expected = form and days_exist(value)
    raw = {"resourceType": "Patient", "id": "p", "birthDate": value}
    parsed = parse_resource(raw)
    assert isinstance(parsed, Patient) is expected, parsed
    if not form:
        assert isinstance(parsed, ResourceProblem)
        assert str(parsed) == (
            "Patient/p: birthDate: Value error, not a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)"
        )
    elif not expected:
        assert str(parsed) == "Patient/p: birthDate: Value error, no such day in the calendar"


@pytest.mark.parametrize("value", DATETIMES)
def test_a_datetime_is_accepted_exactly_when_python_fullmatch_accepts_it_and_its_day_exists(
    value: str,
) -> None:
    form = re.fullmatch(DATETIME_PATTERN.removeprefix("^").removesuffix("$"), value) is not None
    expected = form and days_exist(value[:10])
    raw = {"resourceType": "Procedure", "id": "x", "performedPeriod": {"start": value}}
    parsed = parse_resource(raw)
    assert isinstance(parsed, Procedure) is expected, parsed
    if not form:
        assert str(parsed) == "Procedure/x: performedPeriod.start: Value error, not a FHIR dateTime"
    elif not expected:
        assert str(parsed) == (
            "Procedure/x: performedPeriod.start: Value error, no such day in the calendar"
        )
    json_mode = parse_resource_json("Procedure", json.dumps(raw))  # the batch's reader, alike
    assert (json_mode is not None) is expected


@pytest.mark.parametrize(
    ("kind", "element", "value", "message"),
    [
        ("Patient", "birthDate", "１９５５-03-02", "not a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)"),
        ("Patient", "birthDate", "1955-03-1２", "not a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)"),
        ("Procedure", "performedDateTime", "２０１９-03-01", "not a FHIR dateTime"),
        ("Procedure", "performedPeriod.start", "2019-03-01T1０:00:00Z", "not a FHIR dateTime"),
        ("ServiceRequest", "authoredOn", "2026-10-0１", "not a FHIR dateTime"),
        ("ServiceRequest", "authoredOn", "\u0662\u0660\u0662\u0666-10-01", "not a FHIR dateTime"),
        ("Condition", "onsetDateTime", "2019-03-01T10:00:00+0１:00", "not a FHIR dateTime"),
    ],
)
def test_a_date_in_other_digits_is_refused_naming_the_element(
    kind: str, element: str, value: str, message: str
) -> None:
    """FHIR's date regexes are ASCII `[0-9]`; `\\d` took any script's digits (full-width `２０１９`)
    and `int` then read them as 2019: the date was accepted as if written in ASCII."""
    name, _, part = element.partition(".")
    raw: dict[str, Any] = {"resourceType": kind, "id": "x", name: {part: value} if part else value}
    parsed = parse_resource(raw)
    assert str(parsed) == f"{kind}/x: {element}: Value error, {message}"
    assert parse_resource_json(kind, json.dumps(raw)) is None  # the batch's reader refuses it too


def test_every_date_element_of_every_model_is_checked_for_its_day() -> None:
    """`_DATED` lists exactly the elements typed as FHIR date, dateTime or Period."""
    for model in MODELS.values():
        dated = {
            name
            for name, hint in get_type_hints(model, include_extras=True).items()
            if name in model.model_fields
            and {FhirDate, FhirDateTime, Period} & set(get_args(hint) or (hint,))
        }
        assert set(_DATED.get(model, ())) == dated, model.__name__
