"""`cto-cds validate` as a quality officer runs it: the installed command, in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_app import ROOT, run

EXAMPLE = str(ROOT / "examples" / "xiao2021_bands.csv")


def test_example_json_has_the_contract() -> None:
    result = run("validate", EXAMPLE, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    primary = data["scores"]["operator_cto"]
    for key in ("n", "events", "auc", "auc_ci95", "hl_chi2", "hl_p", "excluded", "bands"):
        assert key in primary
    assert primary["bands"]["moderate"]["successes"] == 21
    assert primary["bands"]["moderate"]["n"] == 24
    assert len(primary["bands"]["moderate"]["ci95"]) == 2
    assert round(primary["auc"], 3) == 0.904
    assert data["scores"]["j_cto"]["excluded"]["count"] == 144
    assert set(data["scores"]["j_cto"]["vs_operator_cto"] or {}) <= {"n", "diff", "ci95", "p"}
    assert "points" not in primary
    assert data["mappings"] is None  # a CSV of inputs: no mapping tables read them


def test_table_and_html_report(tmp_path: Path) -> None:
    result = run("validate", EXAMPLE, "--report", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "Operator-CTO" in result.stdout
    assert "102/103" in result.stdout
    assert "mapping tables" not in result.stdout
    page = (tmp_path / "out" / "validation.html").read_text()
    assert page.count("<svg") >= 3  # ROC, band bars, calibration
    # Self-contained: nothing fetched when the page opens.
    for fetches in ("<script", "<link", 'src="http', "href='http", "@import"):
        assert fetches not in page


BAD = "calcification,technical_success\nmild,1\nchalky,0\nsevere,0\nnone,1\n"


def test_bad_rows_are_reported_and_the_rest_analysed(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(BAD)
    result = run("validate", str(path), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["lesions"] == 3
    assert data["rows_rejected"] == 1
    assert data["errors"][0].startswith("line 3, column calcification: 'chalky'")


def test_a_byte_that_is_not_utf8_sets_its_row_aside(tmp_path: Path) -> None:
    """It refused the whole file before, as `score --csv` (which also stopped half-way) did."""
    path = tmp_path / "c.csv"
    path.write_bytes(BAD.replace("chalky", "mild").replace("severe", "s\xe9vere").encode("latin-1"))
    result = run("validate", str(path), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["lesions"], data["rows_rejected"]) == (3, 1)
    assert data["errors"] == ["line 4, column calcification: '' is not UTF-8 text (byte 0xE9)"]


def test_strict_refuses_a_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(BAD)
    result = run("validate", str(path), "--strict")
    assert result.returncode == 2
    assert result.stderr.startswith("cto-cds: error: line 3, column calcification")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("stump,technical_sucess\n", "unknown column 'technical_sucess'"),
        ("technical_success\n2\n", "no usable lesion"),
    ],
)
def test_unusable_files_fail_in_one_line(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "c.csv"
    if content is not None:
        path.write_text(content)
    result = run("validate", str(path))
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "{dir}: no .ndjson or .jsonl file in the directory"),
        ({"a.ndjson": "\n"}, "{dir}: its NDJSON files hold no resource"),
        ({"a.ndjson": "{x\n"}, "a.ndjson:1: not valid JSON (Expecting property name"),
    ],
)
def test_an_export_without_a_resource_says_why(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    """It said only "no usable lesion (1 rows rejected)", which named neither file nor reason."""
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    result = run("validate", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.startswith("cto-cds: error: " + message.format(dir=tmp_path))
    assert result.stderr.count("\n") == 1
