"""The lean models: `ref` computed once per resource and kept, never a model field; FHIR dates
and dateTimes checked in Rust exactly as Python's `re.fullmatch` checks them."""

from __future__ import annotations

import json
import re

import pytest

from cds.sources.resources import (
    DATE_PATTERN,
    DATETIME_PATTERN,
    Condition,
    Patient,
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


@pytest.mark.parametrize("value", DATES)
def test_a_date_is_accepted_exactly_when_python_fullmatch_accepts_it(value: str) -> None:
    expected = re.fullmatch(DATE_PATTERN.removeprefix("^").removesuffix("$"), value) is not None
    raw = {"resourceType": "Patient", "id": "p", "birthDate": value}
    parsed = parse_resource(raw)
    assert isinstance(parsed, Patient) is expected, parsed
    if not expected:
        assert isinstance(parsed, ResourceProblem)
        assert str(parsed) == (
            "Patient/p: birthDate: Value error, not a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)"
        )


@pytest.mark.parametrize("value", DATETIMES)
def test_a_datetime_is_accepted_exactly_when_python_fullmatch_accepts_it(value: str) -> None:
    expected = re.fullmatch(DATETIME_PATTERN.removeprefix("^").removesuffix("$"), value) is not None
    raw = {"resourceType": "Procedure", "id": "x", "performedPeriod": {"start": value}}
    parsed = parse_resource(raw)
    assert isinstance(parsed, Procedure) is expected, parsed
    if not expected:
        assert str(parsed) == "Procedure/x: performedPeriod.start: Value error, not a FHIR dateTime"
    json_mode = parse_resource_json("Procedure", json.dumps(raw))  # the batch's reader, alike
    assert (json_mode is not None) is expected
