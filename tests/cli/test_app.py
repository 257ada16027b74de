"""`cto-cds` run as a user runs it: the installed console script, in a subprocess."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import cds

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.json"))


def run(
    *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("cto-cds", path=str(Path(sys.executable).parent))
    command = [exe] if exe else [sys.executable, "-m", "cds"]
    return subprocess.run(
        [*command, *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **env} if env else None,
    )


def write(tmp_path: Path, content: str | bytes, name: str = "case.json") -> str:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return str(path)


def test_version() -> None:
    done = run("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"cto-cds {cds.__version__}"


@pytest.mark.parametrize("command", [[], ["score"], ["inputs"]])
def test_help_on_every_command(command: list[str]) -> None:
    done = run(*command, "--help")
    assert done.returncode == 0
    assert "Usage" in done.stdout


def test_score_json_follows_the_contract(tmp_path: Path) -> None:
    case = {
        "stump": "blunt",
        "calcification": "mild",
        "occlusion_length_mm": 25,
        "tortuosity": "none",
        "operator_annual_cto_volume": 80,
    }
    done = run("score", write(tmp_path, json.dumps(case)), "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out == cds.score_json(case)
    assert list(out) == ["scores"]
    operator = out["scores"]["operator_cto"]
    for key in ("points", "min", "max", "band", "bands", "outcome", "estimate", "items", "missing"):
        assert key in operator
    assert operator["points"] is None
    assert "operator_last_year_success_rate" in operator["missing"]


def test_score_table_shows_points_band_estimate_and_missing(tmp_path: Path) -> None:
    case = {
        "stump": "blunt",
        "calcification": "mild",
        "occlusion_length_mm": 25,
        "distal_vessel_disease": True,
    }
    done = run("score", write(tmp_path, json.dumps(case)))
    assert done.returncode == 0, done.stderr
    for text in (
        "Operator-CTO",
        "J-CTO",
        "PROGRESS-CTO",
        "RECHARGE",
        "CL-score",
        "ORA",
        "CASTLE",
        "complications",
        "previous failed attempt",  # retry_lesion, in clinical words
        "single",
        "Xiao",
    ):
        assert text in done.stdout, text


def test_score_table_shows_estimate_with_count_and_interval(tmp_path: Path) -> None:
    done = run("score", str(ROOT / "examples" / "difficult_lesion_average_operator.json"))
    assert done.returncode == 0
    assert "54% (7 of 13; 95% CI 29–77%)" in done.stdout  # the card's rounding rule
    assert "difficult" in done.stdout


def _squeezed(text: str) -> str:
    """Output text with the table drawing and all whitespace removed: what a reader can piece
    together from wrapped cells."""
    return re.sub(r"[\s│┃┆|]+", "", text)


@pytest.mark.parametrize("width", [40, 60, 80])
def test_tables_never_cut_a_clinical_value(width: int) -> None:
    from cds.output.console import print_report
    from cds.output.wording import bands_text, estimate_text, input_words
    from cds.scoring.engine import score_all
    from cds.scoring.inputs import parse_inputs

    report = score_all(parse_inputs({"stump": "blunt", "age_years": 70}))
    out = io.StringIO()
    print_report(report, Console(file=out, width=width, force_terminal=False))
    text = out.getvalue()
    assert "…" not in text
    squeezed = _squeezed(text)
    for result in report.scores.values():
        for value in (result.name, bands_text(result), *map(input_words, result.missing)):
            assert _squeezed(value) in squeezed, value
        if result.estimate:
            assert _squeezed(estimate_text(result.estimate)) in squeezed
    assert max(map(len, text.splitlines())) <= width


@pytest.mark.parametrize("columns", ["80", "50"])
def test_piped_output_is_not_cut(columns: str) -> None:
    from cds.output.wording import bands_text, input_words
    from cds.scoring.result import ScoreReport

    example = str(ROOT / "examples" / "difficult_lesion_average_operator.json")
    report = ScoreReport.model_validate(json.loads(run("score", example, "--json").stdout))
    done = run("score", example, env={"COLUMNS": columns})
    assert done.returncode == 0, done.stderr
    assert "…" not in done.stdout
    squeezed = _squeezed(done.stdout)
    for result in report.scores.values():
        for value in (result.name, bands_text(result), *map(input_words, result.missing)):
            assert _squeezed(value) in squeezed, value


def test_json_is_a_flag_in_the_help() -> None:
    done = run("score", "--help")
    line = next(x for x in done.stdout.splitlines() if "--json" in x)
    assert "<bool>" not in line
    assert "Print the JSON contract" in line


def test_error_names_the_file_once_and_cuts_a_long_value(tmp_path: Path) -> None:
    path = write(tmp_path, json.dumps({"occlusion_length_mm": "x" * 500}))
    done = run("score", path)
    assert done.returncode == 2
    assert done.stderr.count(path) == 1
    assert "x" * 100 not in done.stderr
    assert "(500 characters)" in done.stderr
    assert "occlusion_length_mm" in done.stderr
    bundle = write(tmp_path, '{"resourceType": "Patient"}', name="b.json")
    done = run("score", "--bundle", bundle)
    assert done.returncode == 2
    assert done.stderr.count(bundle) == 1, done.stderr


def test_reads_stdin() -> None:
    done = run("score", "-", "--json", stdin=b'{"age_years": 80}')
    assert done.returncode == 0
    assert json.loads(done.stdout)["scores"]["ora"]["min"] == 1


def test_bad_stdin_is_one_line_and_exit_2() -> None:
    done = run("score", "-", stdin=b'{"age_years": ' + b"9" * 4301 + b"}")
    assert done.returncode == 2
    assert (
        done.stderr
        == "cto-cds: error: stdin: not valid JSON: an integer of more than 4,300 digits\n"
    )


@pytest.mark.parametrize("name", ["b.json", "b.ndjson"])
def test_bad_bundle_number_is_one_line_and_exit_2(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, '{"resourceType": "Bundle", "total": ' + "9" * 4301 + "}\n", name)
    done = run("score", "--bundle", path)
    assert done.returncode == 2
    assert "an integer of more than 4,300 digits" in done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_shipped_examples_score(example: Path) -> None:
    done = run("score", str(example), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == cds.score_json(json.loads(example.read_text()))


def test_examples_exist() -> None:
    assert len(EXAMPLES) >= 3


BAD_FILES: list[tuple[Any, str]] = [
    ("{", "not valid JSON"),
    ("", "not valid JSON"),
    (b"\xff\xfe{}", "not UTF-8"),
    ('{"age_years": 70, "age_years": 80}', 'duplicate key "age_years"'),
    ("[1, 2]", "must be a JSON object, not an array"),
    ('"stump"', "must be a JSON object"),
    ('{"stump": "Blunt"}', 'inputs.stump: must be one of tapered, blunt, no_stump, got "Blunt"'),
    ('{"occlusion_length": 25}', "inputs.occlusion_length: is not a canonical input, got 25"),
    ('{"age_years": "70"}', 'inputs.age_years: must be an integer ≥ 0, got "70"'),
    ('{"prior_cabg": 1}', "inputs.prior_cabg: must be true or false, got 1"),
    ('{"rentrop_grade": 4}', "inputs.rentrop_grade: must be an integer from 0 to 3, got 4"),
    ('{"occlusion_length_mm": -3}', "inputs.occlusion_length_mm: must be a number ≥ 0, got -3"),
    ('{"occlusion_length_mm": NaN}', "inputs.occlusion_length_mm: must be a number ≥ 0, got NaN"),
    (  # the text between two values was cut as one value, the field name with it
        '{"sex": "a", "operator_last_year_success_rate": "b"}',
        'got "a"; inputs.operator_last_year_success_rate: must be a number from 0 to 1, got "b"',
    ),
    # Past Python's int digit limit json raises a plain ValueError (a traceback, exit 1, before).
    (
        b'{"age_years": ' + b"9" * 4301 + b"}",
        "not valid JSON: an integer of more than 4,300 digits",
    ),
]


@pytest.mark.parametrize(("content", "message"), BAD_FILES)
@pytest.mark.parametrize("as_json", [False, True])
def test_bad_file_is_one_line_and_exit_2(
    tmp_path: Path, content: Any, message: str, as_json: bool
) -> None:
    path = write(tmp_path, content)
    done = run("score", path, *(["--json"] if as_json else []))
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"cto-cds: error: {path}: ")
    assert message in lines[0]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("target", "message"), [("missing.json", "no such file"), (".", "is a directory")]
)
def test_unreadable_path_is_one_line_and_exit_2(tmp_path: Path, target: str, message: str) -> None:
    done = run("score", str(tmp_path / target))
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_missing_argument_is_a_usage_error() -> None:
    done = run("score")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr


def test_inputs_command_lists_every_input() -> None:
    done = run("inputs")
    assert done.returncode == 0
    for spec in cds.INPUTS:
        assert spec.name in done.stdout


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CTO_CDS_FHIR_DEADLINE": "soon"}, "CTO_CDS_FHIR_DEADLINE"),
        ({"CTO_CDS_MAPPINGS_DIR": "/nonexistent-site"}, "CTO_CDS_MAPPINGS_DIR"),
        ({"CTO_CDS_ENVIRONMENT": "production"}, "CTO_CDS_APP_CONTEXT_SECRET"),
    ],
)
def test_serve_refuses_a_bad_configuration_at_start(env: dict[str, str], message: str) -> None:
    import os

    exe = shutil.which("cto-cds", path=str(Path(sys.executable).parent))
    done = subprocess.run(
        [exe or "cto-cds", "serve", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **env},
    )
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert message in done.stderr


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://postgres@127.0.0.1:1/test",  # nothing listens: unreachable
        "postgresql+asyncpg://no_such_role_cto@127.0.0.1:5432/test",  # unknown role
        "mysql://u:s3cret@h/db",  # unsupported
    ],
)
def test_serve_refuses_a_bad_database_in_one_line(url: str) -> None:
    import os

    exe = shutil.which("cto-cds", path=str(Path(sys.executable).parent))
    command = [exe] if exe else [sys.executable, "-m", "cds"]
    env = {**os.environ, "CTO_CDS_DATABASE_URL": url}
    done = subprocess.run(
        [*command, "serve", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("cto-cds: error: CTO_CDS_DATABASE_URL: ")
    assert done.stderr.count("\n") == 1
    assert "s3cret" not in done.stderr


@pytest.mark.parametrize("trust_file", [None, "[]"])
def test_serve_warns_at_start_up_when_the_trust_list_is_empty(
    tmp_path: Path, trust_file: str | None
) -> None:
    from cds.demo.ports import free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith("CTO_CDS_")}
    if trust_file is not None:
        env["CTO_CDS_TRUSTED_CLIENTS"] = write(tmp_path, trust_file, name="trusted.json")
    exe = shutil.which("cto-cds", path=str(Path(sys.executable).parent))
    command = [exe] if exe else [sys.executable, "-m", "cds"]
    proc = subprocess.Popen(
        [*command, "serve", "--port", str(free_port())],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        # Before the server starts: after the app's own start-up lines (the mapping tables').
        lines = [proc.stderr.readline() for _ in range(2)]
        assert json.loads(lines[0])["msg"].startswith("mapping tables "), lines
        warning = lines[1]
        assert warning.startswith("cto-cds: warning: the trust list is empty"), lines
        assert "every hook call will be refused" in warning
    finally:
        proc.terminate()
        proc.communicate(timeout=30)  # reads stderr to its end and closes it
