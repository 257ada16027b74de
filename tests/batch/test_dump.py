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
