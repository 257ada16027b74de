"""`parse_resource_json` (JSON mode, from the text) against `parse_resource` (Python mode, from the
dict `json.loads` reads): JSON mode accepts only what Python mode accepts, with equal values, and
refuses what Python mode refuses (the caller then falls back to `parse_resource` for the report)."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from cds.sources.resources import (
    Resource,
    ResourceProblem,
    parse_resource,
    parse_resource_json,
)

OBS = '{"resourceType":"Observation","id":"o",'
TRICKY = [
    # numbers: ints for floats, floats for ints, bools, strings, huge and tiny, non-finite
    OBS + '"valueQuantity":{"value":5}}',
    OBS + '"valueQuantity":{"value":5.0}}',
    OBS + '"valueQuantity":{"value":-0}}',
    OBS + '"valueQuantity":{"value":-0.0}}',
    OBS + '"valueQuantity":{"value":1e2}}',
    OBS + '"valueQuantity":{"value":1e400}}',
    OBS + '"valueQuantity":{"value":-1e400}}',
    OBS + '"valueQuantity":{"value":1e-400}}',
    OBS + '"valueQuantity":{"value":4.9e-324}}',
    OBS + '"valueQuantity":{"value":0.1000000000000000055511151231257827}}',
    OBS + '"valueQuantity":{"value":123456789012345678901234567890}}',
    OBS + '"valueQuantity":{"value":NaN}}',
    OBS + '"valueQuantity":{"value":Infinity}}',
    OBS + '"valueQuantity":{"value":true}}',
    OBS + '"valueQuantity":{"value":"5"}}',
    OBS + '"valueQuantity":{"value":null}}',
    OBS + '"valueInteger":1.0}',
    OBS + '"valueInteger":1e2}',
    OBS + '"valueInteger":true}',
    OBS + '"valueInteger":"1"}',
    OBS + '"valueInteger":123456789012345678901234567890}',
    OBS + '"valueInteger":-9223372036854775809}',
    OBS + '"valueBoolean":1}',
    OBS + '"valueBoolean":"true"}',
    OBS + '"valueBoolean":false}',
    OBS + '"extra":NaN,"more":[1e400,{"x":-Infinity}]}',
    # strings: escapes, duplicate keys (the last one is read)
    OBS + '"valueString":"\\ud83d\\ude00 \\u00e9 \\u0000 \\/"}',
    OBS + '"valueString":"x","valueString":"y"}',
    OBS + '"valueString":1,"valueString":"y"}',
    OBS + '"valueString":"y","valueString":1}',
    '{"resourceType":"Observation","resourceType":"Observation","id":"o","id":"p"}',
    # dates
    OBS + '"effectiveDateTime":"2019-02-30"}',
    OBS + '"effectiveDateTime":"2019-13-01"}',
    OBS + '"effectiveDateTime":"2019-01-01T10:00:00+15:00"}',
    OBS + '"effectiveDateTime":"2019-01-01T10:00:00Z"}',
    OBS + '"effectiveDateTime":"2019-01-01\\n"}',
    OBS + '"effectiveDateTime":20190101}',
    '{"resourceType":"Patient","id":"p","birthDate":"1950-02-29"}',
    '{"resourceType":"Patient","id":"p","birthDate":"1950"}',
    '{"resourceType":"Patient","id":"p","birthDate":"1950-1-1"}',
    # nested errors: the element path of the first error
    OBS + '"code":{"coding":[{"system":"s","code":1}]}}',
    OBS + '"code":{"coding":{"system":"s"}}}',
    OBS + '"code":{"coding":[null]}}',
    OBS + '"code":[]}',
    OBS + '"component":[{"code":{"coding":[{"code":"a"}]},"valueQuantity":{"value":"x"}}]}',
    OBS + '"focus":[{"reference":"Practitioner/1"},{"reference":5}]}',
    OBS + '"status":null,"code":null,"focus":null}',
    OBS + '"status":1,"code":2}',
    '{"resourceType":"Patient","id":"p","name":[{"given":["a",1]}],"gender":3}',
    '{"resourceType":"Procedure","id":"p","performer":[{"actor":{"reference":"Practitioner/x"}}],'
    '"performedPeriod":{"start":"2020","end":false}}',
    '{"resourceType":"Procedure","id":1}',
    '{"resourceType":"Procedure"}',
    '{"resourceType":"ServiceRequest","id":"s","performer":[{"reference":"Practitioner/d"},7]}',
    '{"resourceType":"OperationOutcome","id":"oo","issue":[{"severity":"error","code":5}]}',
    '{"resourceType":"Procedure","id":"x","deep":' + "[" * 100 + "]" * 100 + "}",
]
FALLBACK = [
    # JSON mode refuses what Python mode reads: the caller reads the dict instead
    OBS + '"valueString":"a\\ud800b"}',
    OBS + '"note":"\\udc00"}',
    '{"resourceType":"Procedure","id":"x","deep":' + "[" * 300 + "]" * 300 + "}",
]


def _agree(text: str) -> None:
    raw = json.loads(text)
    python = parse_resource(raw)
    from_json = parse_resource_json(raw["resourceType"], text)
    if isinstance(python, Resource):
        assert from_json is not None, text
        assert type(from_json) is type(python)
        # repr: equal values *and* types (5 against 5.0), NaN included
        assert repr(from_json) == repr(python)
    else:
        assert isinstance(python, ResourceProblem)
        assert from_json is None, text


@pytest.mark.parametrize("text", TRICKY)
def test_json_mode_reads_what_python_mode_reads(text: str) -> None:
    _agree(text)


@pytest.mark.parametrize("text", FALLBACK)
def test_what_json_mode_refuses_python_mode_may_read(text: str) -> None:
    raw = json.loads(text)
    assert parse_resource_json(raw["resourceType"], text) is None
    assert isinstance(parse_resource(raw), Resource)


def test_types_without_a_model_are_left_to_the_caller() -> None:
    assert parse_resource_json("Encounter", '{"resourceType":"Encounter","id":"e"}') is None


_WEIRD: list[Any] = [
    *("x", "", "2019", "2019-02", "2019-02-30", "2020-01-01T10:00:00Z", "\u00e9\u0000"),
    *(0, 1, -7, 5.0, 1.5, -0.0, 2.5e-7, 10**25, -(10**20), True, False, None),
    *(float("nan"), float("inf"), [], {}, [None], [1], ["x"], [{}]),
    *({"coding": "x"}, {"coding": [{"code": 5}]}, {"reference": 7}, {"value": "5"}),
]
_BASES: list[dict[str, Any]] = [
    {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "1-1", "display": "d"}]},
        "subject": {"reference": "Patient/p1"},
        "focus": [{"reference": "Practitioner/d1"}],
        "effectiveDateTime": "2020-01-02",
        "valueQuantity": {"value": 85, "unit": "1"},
        "component": [{"code": {"text": "c"}, "valueBoolean": True}],
    },
    {
        "resourceType": "Procedure",
        "id": "h1",
        "status": "completed",
        "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "92943"}]},
        "subject": {"reference": "Patient/p1"},
        "performedPeriod": {"start": "2020-09-20", "end": "2020-09-21"},
        "performer": [{"actor": {"reference": "Practitioner/d1"}}],
        "bodySite": [{"coding": [{"system": "http://snomed.info/sct", "code": "91748002"}]}],
    },
    {
        "resourceType": "Patient",
        "id": "p1",
        "birthDate": "1950-03-04",
        "gender": "female",
        "name": [{"family": "Ng", "given": ["A"]}],
    },
]


def _paths(node: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    found = [prefix] if prefix and prefix != ("resourceType",) else []
    if isinstance(node, dict):
        for key, child in node.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += _paths(child, (*prefix, index))
    return found


def test_json_mode_agrees_on_seeded_damage() -> None:
    """Every element of a few resources set, one at a time, to odd values (seeded)."""
    rng = random.Random(9)
    for base in _BASES:
        for path in _paths(base):
            for value in rng.sample(_WEIRD, 6):
                damaged = json.loads(json.dumps(base))
                node = damaged
                for part in path[:-1]:
                    node = node[part]
                node[path[-1]] = value
                _agree(json.dumps(damaged))


@pytest.mark.parametrize(
    ("kind", "element", "value"),
    [
        ("Patient", "birthDate", "1950-01-01\n"),  # `re.match` with `$` accepted the newline
        ("Patient", "birthDate", "1950-13-01"),
        ("Condition", "onsetDateTime", "2020-01-01T10:00:00Z\n"),
    ],
)
def test_a_date_is_matched_whole(kind: str, element: str, value: str) -> None:
    problem = parse_resource({"resourceType": kind, "id": "r", element: value})
    assert isinstance(problem, ResourceProblem)
    assert problem.element == element
    fine = parse_resource({"resourceType": kind, "id": "r", element: value.rstrip("\n")})
    assert isinstance(fine, Resource) or "-13-" in value
