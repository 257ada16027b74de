"""Result lines are written by orjson but must read exactly as `json.dumps` would write them."""

from __future__ import annotations

import json
import math
import random
import struct

import pytest

from cds.batch.run import _dump


def _json(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"


def test_random_floats_of_every_magnitude_are_written_as_json_writes_them() -> None:
    rng = random.Random(9)
    floats = [struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0] for _ in range(20_000)]
    floats += [float(f"{m}e{e}") for e in range(-12, 20) for m in (1, 1.5, 2.5, 9.999)]
    floats = [f for f in floats if math.isfinite(f)]
    for f in floats:
        assert _dump({"x": f}) == _json({"x": f}), f
    assert _dump([1e-05, 2.5e-07]) == "[1e-05,2.5e-07]\n"  # where orjson alone differs


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        "é → 😀 \u2028 \ufeff",
        'quote " backslash \\ tab \t newline \n nul \u0000 \u001f \u007f \b \f \r',
        "contains 0.00001 and 1e-5 as text",  # a false alarm: written by json, still identical
        {"nested": [1, 2.5, None, True, False, (3, 4)], "a": {"b": -0.0}},
        12345678901234567890,
    ],
)
def test_values_are_written_as_json_writes_them(value: object) -> None:
    assert _dump({"v": value}) == _json({"v": value})


def test_what_orjson_refuses_is_written_by_json() -> None:
    lone = "\ud800"  # a lone surrogate: orjson refuses it; json writes it
    assert _dump({"v": lone}) == _json({"v": lone})


@pytest.mark.parametrize(
    ("values", "notes"),
    [
        ({"calcification": "severe", "occlusion_length_mm": 25.5, "sex": "female"}, {}),
        ({"occlusion_length_mm": 0.00001}, {}),  # a small float inside a score's JSON
        ({"operator_last_year_success_rate": 2.5e-7}, {}),
        ({"stump": "blunt"}, {"stump": "note with a lone surrogate \ud800"}),
        ({}, {}),
    ],
)
def test_a_case_line_is_the_contract_as_json_writes_it(
    values: dict[str, object], notes: dict[str, str]
) -> None:
    from cds.batch.run import _FRAGMENTS, _case_line
    from tests.output.card_cases import case_of

    where: dict[str, object] = {"patient": "p1", "order": "ServiceRequest/o1"}
    case = case_of(values, notes)
    for _ in range(2):  # the second time each score's JSON is the one kept
        assert _case_line(where, case) == _json({**where, **case.contract()})
    for result in case.report.scores.values():
        assert _FRAGMENTS[id(result)][0] is result


def test_the_contract_inputs_are_the_models_json_dump() -> None:
    from tests.output.card_cases import case_of

    case = case_of({"calcification": "severe", "occlusion_length_mm": 25.5, "stump": None})
    dumped = case.mapping.model_dump(mode="json")["inputs"]
    assert json.dumps(case.contract()["inputs"]) == json.dumps(dumped)  # same keys, same order
