"""`one_line`: what an error line keeps of a long message, in linear time."""

from __future__ import annotations

import json

import pytest

from cds.cli.errors import MAX_LINE, one_line

TWO = (
    'inputs.sex: must be one of female, male, other, got "a"; '
    'inputs.operator_last_year_success_rate: must be a number from 0 to 1, got "b"'
)


def test_the_text_between_two_quoted_values_is_not_a_value() -> None:
    """A regular expression took it from the closing quote of "a" to the opening one of "b"."""
    assert one_line(TWO) == TWO
    assert (
        one_line(TWO + ', got "' + "c" * 100 + '"')
        == TWO + ', got "' + "c" * 40 + '…" (100 characters)'
    )


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ('say \\"hi\\" ' + "x" * 80, 'say \\"hi\\" ' + "x" * 29),  # escaped quotes stay inside
        ("x" * 80 + "\\\\", "x" * 40),  # an escaped backslash does not escape the closing quote
    ],
)
def test_escapes_are_read_as_json_reads_them(value: str, shown: str) -> None:
    line = one_line(f'a: got "{value}"; b: got "y"')
    assert line == f'a: got "{shown}…" ({len(value)} characters); b: got "y"'


def test_field_names_and_an_unclosed_quote_are_kept() -> None:
    name = "inputs." + "k" * 300
    assert one_line(f"{name}: is not a canonical input, got 1") == (
        f"{name}: is not a canonical input, got 1"
    )
    assert one_line('got "' + "x" * 100) == 'got "' + "x" * 100


def test_line_breaks_are_joined() -> None:
    assert one_line("a\n  \n b\r\nc", "f.json") == "f.json: a b c"


@pytest.mark.parametrize(
    "value",
    ["x" * 20_000_000, " " * 2_000_000, "\\\\" * 2_000_000, '\\"' * 2_000_000],
    ids=["letters", "spaces", "backslashes", "escaped quotes"],
)
def test_a_long_value_is_cut(value: str) -> None:
    """A 20 MB string took 19 s and 2.7 GB; 200,000 spaces took 90 s (the line-break regex). No
    time is asserted (speed is a benchmark's, not a test's): the scan is one pass, and these
    inputs would hold the suite for minutes were it not."""
    line = one_line(f'inputs.sex: must be one of female, male, other, got "{value}"', "c.json")
    assert line.endswith(f'…" ({len(value)} characters)')
    assert len(line) < 200


@pytest.mark.parametrize(
    "message",
    [
        "inputs.age_years: must be an integer ≥ 0, got " + json.dumps([1] * 1_000_000),
        "; ".join(f"inputs.k{i}: is not a canonical input, got 1" for i in range(200_000)),
    ],
    ids=["array", "unknown keys"],
)
def test_the_whole_line_is_capped(message: str) -> None:
    line = one_line(message, "c.json")
    assert len(line) <= MAX_LINE
    assert line.startswith("c.json: inputs.")
    kept = MAX_LINE - 40
    assert line.endswith(f"… ({len('c.json: ' + message) - kept:,} more characters)")
