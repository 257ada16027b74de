"""`cto-cds score --ndjson/--csv --out [--jobs]` as a registry run: the installed command."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from tests.cli.test_app import run


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("export")
    text = resources.files("cds.demo").joinpath("cohort.ndjson").read_text(encoding="utf-8")
    (directory / "cohort.ndjson").write_text(text + "{broken\n")
    return directory


def test_jobs_give_the_same_output_as_one_job(export: Path, tmp_path: Path) -> None:
    outputs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"out{jobs}.ndjson"
        result = run(
            "score",
            "--ndjson",
            str(export),
            "--out",
            str(out),
            "--jobs",
            jobs,
            "--today",
            "2026-12-01",
        )
        assert result.returncode == 0, result.stderr
        assert "CTO-PCI orders" in result.stderr
        outputs.append(out.read_text())
        errors = (tmp_path / f"out{jobs}.ndjson.errors.ndjson").read_text().splitlines()
        assert [json.loads(e)["where"] for e in errors] == ["cohort.ndjson:1838"]
    assert outputs[0] == outputs[1]
    lines = [json.loads(line) for line in outputs[0].splitlines()]
    assert len(lines) >= 30
    assert {"patient", "order", "scores", "inputs", "context"} <= set(lines[0])


def test_an_integer_past_the_digit_limit_is_one_bad_line(export: Path, tmp_path: Path) -> None:
    """It stopped the whole run with a traceback (exit 1) before."""
    directory = tmp_path / "export"
    directory.mkdir()
    text = (export / "cohort.ndjson").read_text()
    long = '{"resourceType":"Observation","id":"x","valueInteger":' + "9" * 4301 + "}\n"
    (directory / "cohort.ndjson").write_text(long + text)
    out = tmp_path / "out.ndjson"
    result = run("score", "--ndjson", str(directory), "--out", str(out), "--today", "2026-12-01")
    assert result.returncode == 0, result.stderr
    errors = [
        json.loads(e) for e in (tmp_path / "out.ndjson.errors.ndjson").read_text().splitlines()
    ]
    assert errors[0] == {
        "where": "cohort.ndjson:1",
        "reason": "not valid JSON (an integer of more than 4,300 digits)",
    }
    assert len(out.read_text().splitlines()) >= 30


def test_csv_batch(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("calcification,stump\nmild,blunt\nnone,sharp\n")
    out = tmp_path / "out.ndjson"
    result = run("score", "--csv", str(path), "--out", str(out), "--jobs", "1")
    assert result.returncode == 0, result.stderr
    (line,) = [json.loads(x) for x in out.read_text().splitlines()]
    assert line["line"] == 2
    assert line["scores"]["operator_cto"]["min"] == 2 - 4  # two lesion points, expert operator
    error = json.loads((tmp_path / "out.ndjson.errors.ndjson").read_text())
    assert (error["line"], error["column"]) == (3, "stump")


def test_a_csv_row_with_fewer_cells_is_an_error(tmp_path: Path) -> None:
    """Its missing cells were read as unknown, and the values after a dropped comma shifted."""
    path = tmp_path / "in.csv"
    path.write_text("lesion_id,calcification,age_years\nA,mild,70\nB,80\nC,none,60\n")
    out = tmp_path / "out.ndjson"
    result = run("score", "--csv", str(path), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert [json.loads(x)["lesion_id"] for x in out.read_text().splitlines()] == ["A", "C"]
    error = json.loads((tmp_path / "out.ndjson.errors.ndjson").read_text())
    assert error == {"line": 3, "column": "(row)", "reason": "'' has 2 cells, header has 3"}


def test_a_csv_row_is_named_by_the_line_it_starts_on(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text('lesion_id,age_years\n"A\nnote",70\n"B\nnote",old\nC,60\n')
    out = tmp_path / "out.ndjson"
    result = run("score", "--csv", str(path), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert [json.loads(x)["line"] for x in out.read_text().splitlines()] == [2, 6]
    error = json.loads((tmp_path / "out.ndjson.errors.ndjson").read_text())
    assert (error["line"], error["column"]) == (4, "age_years")


def test_a_csv_cell_past_the_csv_limit_is_one_bad_row(tmp_path: Path) -> None:
    """`_csv.Error: field larger than field limit` was a traceback (exit 1) before."""
    path = tmp_path / "in.csv"
    path.write_text(f"lesion_id,age_years\nA,70\nB,{'9' * 131_073}\nC,60\n")
    out = tmp_path / "out.ndjson"
    result = run("score", "--csv", str(path), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert [json.loads(x)["lesion_id"] for x in out.read_text().splitlines()] == ["A", "C"]
    error = json.loads((tmp_path / "out.ndjson.errors.ndjson").read_text())
    assert error == {
        "line": 3,
        "column": "(row)",
        "reason": "'' is not readable CSV (field larger than field limit (131072))",
    }


def test_a_byte_that_is_not_utf8_is_one_bad_row(tmp_path: Path) -> None:
    """The run stopped half-way before, naming a wrong offset (that of the decoder's chunk)."""
    rows = [f"R{i},mild,blunt,70\n" for i in range(1000)]
    rows[500] = "R500,mild,bl\xe9nt,70\n"
    path = tmp_path / "in.csv"
    path.write_bytes(
        ("lesion_id,calcification,stump,age_years\n" + "".join(rows)).encode("latin-1")
    )
    out = tmp_path / "out.ndjson"
    result = run("score", "--csv", str(path), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert len(out.read_text().splitlines()) == 999
    error = json.loads((tmp_path / "out.ndjson.errors.ndjson").read_text())
    assert error == {"line": 502, "column": "stump", "reason": "'' is not UTF-8 text (byte 0xE9)"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ndjson", "x", "--csv", "y", "--out", "o"], "exactly one of --ndjson DIR or --csv"),
        (["--csv", "y"], "--out FILE.ndjson is required"),
        (["f.json", "--csv", "y", "--out", "o"], "do not combine with FILE"),
        (["--ndjson", "/nonexistent-dir", "--out", "{out}"], "not a directory"),
        (["--csv", "in.csv", "--out", "{out}", "--jobs", "-1"], "--jobs: must be ≥ 0"),
    ],
)
def test_bad_options_fail_in_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    args = [a.replace("{out}", str(tmp_path / "o.ndjson")) for a in args]
    result = run("score", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stderr.count("\n") == 1


def test_an_order_that_cannot_be_read_or_has_no_patient_is_an_error(
    export: Path, tmp_path: Path
) -> None:
    """Such an order was neither scored nor in the errors file: lost without a word."""
    directory = tmp_path / "export"
    directory.mkdir()
    resources = [
        json.loads(line) for line in (export / "cohort.ndjson").read_text().splitlines()[:-1]
    ]
    orders = [r for r in resources if r["resourceType"] == "ServiceRequest"]
    orders[0]["authoredOn"] = "2019-02-30"
    orders[1].pop("subject")
    orders[2]["subject"] = {"reference": "Group/registry"}
    (directory / "cohort.ndjson").write_text("".join(json.dumps(r) + "\n" for r in resources))
    out = tmp_path / "out.ndjson"
    result = run("score", "--ndjson", str(directory), "--out", str(out), "--today", "2026-12-01")
    assert result.returncode == 0, result.stderr
    errors = [
        json.loads(e) for e in (tmp_path / "out.ndjson.errors.ndjson").read_text().splitlines()
    ]
    lost = "subject is not a Patient reference: the order is not scored"
    assert errors == [
        {"where": f"ServiceRequest/{orders[1]['id']}", "reason": lost},
        {"where": f"ServiceRequest/{orders[2]['id']}", "reason": lost},
        {
            "patient": orders[0]["subject"]["reference"].removeprefix("Patient/"),
            "order": f"ServiceRequest/{orders[0]['id']}",
            "reason": "authoredOn: Value error, no such day in the calendar",
        },
    ]
    assert len(out.read_text().splitlines()) == len(orders) - 3


def test_an_order_dated_at_the_end_of_the_calendar_is_one_error(
    export: Path, tmp_path: Path
) -> None:
    """OverflowError (its history searched up to a day past 9999-12-31) stopped the whole run."""
    directory = tmp_path / "export"
    directory.mkdir()
    lines = (export / "cohort.ndjson").read_text().splitlines()[:-1]
    resources = [json.loads(line) for line in lines]
    order = next(r for r in resources if r["resourceType"] == "ServiceRequest")
    order["authoredOn"] = "9999-12-31"
    (directory / "cohort.ndjson").write_text("".join(json.dumps(r) + "\n" for r in resources))
    out = tmp_path / "out.ndjson"
    result = run("score", "--ndjson", str(directory), "--out", str(out), "--today", "2026-12-01")
    assert result.returncode == 0, result.stderr
    errors = (tmp_path / "out.ndjson.errors.ndjson").read_text().splitlines()
    assert [json.loads(e)["order"] for e in errors] == [f"ServiceRequest/{order['id']}"]
    orders = sum(r["resourceType"] == "ServiceRequest" for r in resources)
    assert len(out.read_text().splitlines()) == orders - 1
