"""The registry CSV: bad cells are reported with line and column, the rest is kept, empty = unknown."""

from __future__ import annotations

import pytest

from cds.scoring.inputs import INPUTS, parse_inputs
from cds.validation.cohort import CohortError, read_cohort

HEADER = "lesion_id,calcification,rentrop_grade,distal_vessel_disease,technical_success\n"


def test_values_are_typed_and_empty_cells_stay_unknown() -> None:
    cohort = read_cohort(HEADER + "A,mild,1,yes,1\nB,,,0,0\n", "c.csv")
    assert cohort.errors == []
    a, b = cohort.lesions
    assert a.inputs["calcification"] == "mild"
    assert a.inputs["rentrop_grade"] == 1
    assert a.inputs["distal_vessel_disease"] is True
    assert (b.inputs["calcification"], b.inputs["rentrop_grade"]) == (None, None)
    assert b.inputs["distal_vessel_disease"] is False
    assert (a.technical_success, b.technical_success) == (1, 0)
    assert a.lesion_id == "A"
    assert len(a.inputs) == len(INPUTS)
    assert "stump" in cohort.absent_inputs
    assert "calcification" not in cohort.absent_inputs


@pytest.mark.parametrize(
    ("row", "column", "reason"),
    [
        ("A,chalky,1,0,1", "calcification", "must be one of none, mild"),
        ("A,mild,4,0,1", "rentrop_grade", "from 0 to 3"),
        ("A,mild,1.5,0,1", "rentrop_grade", "integer"),
        ("A,mild,1,maybe,1", "distal_vessel_disease", "0/1"),
        ("A,mild,1,0,", "technical_success", "required"),
        ("A,mild,1,0,2", "technical_success", "0 or 1"),
        ("A,mild,1,0,1,extra", "(row)", "has 6 cells, header has 5"),
        # A dropped delimiter shifts the later values: refused as a long row is (read before).
        ("A,mild,0,1", "(row)", "has 4 cells, header has 5"),
        ("A", "(row)", "has 1 cell, header has 5"),
        # Python's int() reads these; nobody wrote them as a number (read as 3 and 1 before).
        ("A,mild,\u0663,0,1", "rentrop_grade", "integer"),
        ("A,mild,\uff11,0,1", "rentrop_grade", "integer"),
        ("A,mild,0_1,0,1", "rentrop_grade", "integer"),
        ("A,mild,+1,0,1", "rentrop_grade", "integer"),
    ],
)
def test_a_bad_cell_is_reported_and_the_other_rows_kept(row: str, column: str, reason: str) -> None:
    cohort = read_cohort(HEADER + "Z,none,2,0,1\n" + row + "\nY,severe,0,1,0\n", "c.csv")
    assert [lesion.lesion_id for lesion in cohort.lesions] == ["Z", "Y"]
    (error,) = cohort.errors
    assert (error.line, error.column) == (3, column)
    assert reason in error.reason
    assert str(error).startswith(f"line 3, column {column}: ")


def test_a_row_is_named_by_the_line_it_starts_on() -> None:
    """A quoted cell with line breaks: the line where the row ended was named before."""
    text = HEADER + '"A\nnote\nmore",chalky,1,0,1\n\n"B\r\n",mild,9,0,1\n'
    cohort = read_cohort(text, "c.csv")
    assert [(e.line, e.column) for e in cohort.errors] == [
        (2, "calcification"),
        (6, "rentrop_grade"),
    ]


@pytest.mark.parametrize(
    "cell",
    ["x" * 131_073, '"x' + "y" * 131_073 + '"', '"' + "x\n" * 70_000 + '"'],
    ids=["plain", "quoted", "quoted over lines"],
)
def test_a_cell_past_the_csv_limit_sets_its_row_aside(cell: str) -> None:
    """csv.Error stopped the whole file (a traceback from `score --csv`) before."""
    text = HEADER + "Z,none,2,0,1\n" + f"A,{cell},1,0,1\n" + 'Y,"severe",0,1,0\n'
    cohort = read_cohort(text, "c.csv")
    assert [lesion.lesion_id for lesion in cohort.lesions] == ["Z", "Y"]
    (error,) = cohort.errors
    assert (error.line, error.column) == (3, "(row)")
    assert error.reason == "is not readable CSV (field larger than field limit (131072))"
    assert cohort.lesions[1].line == 3 + cell.count("\n") + 1


def test_a_byte_that_is_not_utf8_sets_its_row_aside() -> None:
    """Callers read the file with errors="surrogateescape": 0xE9 arrives as U+DCE9."""
    text = HEADER + 'Z,none,2,0,1\nA,m\udce9ld,1,0,1\n"B\n\udcff",mild,1,0,1\nY,mild,0,1,0\n'
    cohort = read_cohort(text, "c.csv")
    assert [lesion.lesion_id for lesion in cohort.lesions] == ["Z", "Y"]
    assert [str(e) for e in cohort.errors] == [
        "line 3, column calcification: '' is not UTF-8 text (byte 0xE9)",
        "line 4, column lesion_id: '' is not UTF-8 text (byte 0xFF)",
    ]
    with pytest.raises(CohortError, match=r"c.csv: the header is not UTF-8 text \(byte 0xE9\)"):
        read_cohort("lesion_id,calcification,technical_success\udce9\n", "c.csv")


def test_optional_columns_are_checked() -> None:
    text = "technical_success,procedural_success,procedure_date,operator_id\n1,1,2024-02-30,op1\n"
    cohort = read_cohort(text, "c.csv")
    assert [(e.column, e.value) for e in cohort.errors] == [("procedure_date", "2024-02-30")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("calcification\nmild\n", "no technical_success column"),
        ("calcificaton,technical_success\nmild,1\n", "unknown column 'calcificaton'"),
        ("technical_success,technical_success\n1,1\n", "duplicate column"),
    ],
)
def test_a_file_level_problem_refuses_the_file(text: str, message: str) -> None:
    with pytest.raises(CohortError, match=message):
        read_cohort(text, "c.csv")


def test_blank_lines_are_not_lesions() -> None:
    cohort = read_cohort(HEADER + "A,mild,1,0,1\n\n,,,,\n  \n,,\n", "c.csv")
    assert len(cohort.lesions) == 1
    assert cohort.errors == []


def test_operator_years_count_as_whole_years_as_in_json() -> None:
    # 4.6 years is 5 whole years (a remainder over six months rounds up, docs/spec/inputs.md);
    # the CSV kept 4.6, so its operator_years_ge_5 item differed from the same case in JSON.
    text = "operator_cto_years,operator_annual_cto_volume,technical_success\n4.6,35,1\n4.5,1e1,0\n"
    a, b = read_cohort(text, "c.csv").lesions
    assert (
        a.inputs["operator_cto_years"]
        == parse_inputs({"operator_cto_years": 4.6})["operator_cto_years"]
        == 5
    )
    assert b.inputs["operator_cto_years"] == 4
    assert (a.inputs["operator_annual_cto_volume"], b.inputs["operator_annual_cto_volume"]) == (
        35,
        10.0,
    )


@pytest.mark.parametrize("cell", ["1e-400", "1e309", "1_000", "\u0663\u0665", "0x10", "25.0.1"])
def test_a_number_cell_is_read_only_as_written(cell: str) -> None:
    cohort = read_cohort("occlusion_length_mm,technical_success\n" + cell + ",1\n", "c.csv")
    (error,) = cohort.errors
    assert (error.column, error.value) == ("occlusion_length_mm", cell)
    assert cohort.lesions == []
