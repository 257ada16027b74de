"""`cto-cds` run as a user runs it: the installed console script, in a subprocess."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import cds

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.json"))


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("cto-cds", path=str(Path(sys.executable).parent))
    command = [exe] if exe else [sys.executable, "-m", "cds"]
    return subprocess.run(
        [*command, *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
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
        "retry_lesion",
        "single",
        "Xiao",
    ):
        assert text in done.stdout, text


def test_score_table_shows_estimate_with_count_and_interval(tmp_path: Path) -> None:
    done = run("score", str(ROOT / "examples" / "difficult_lesion_average_operator.json"))
    assert done.returncode == 0
    assert "53.8% (7 of 13; 95% CI 29–77%)" in done.stdout
    assert "difficult" in done.stdout


def test_reads_stdin() -> None:
    done = run("score", "-", "--json", stdin=b'{"age_years": 80}')
    assert done.returncode == 0
    assert json.loads(done.stdout)["scores"]["ora"]["min"] == 1


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
