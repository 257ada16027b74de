"""`cto-cds mappings check|export` run as a user runs them: the installed console script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cds.cli.app import app
from cds.mapping.export import validate, value_sets
from cds.mapping.tables import CODE_COLUMNS, DEFAULT_DIR, load_tables
from cds.writeback.codesystems import score_codesystems
from tests.mapping.test_export import hide_fhir_resources

HEADER = ",".join(CODE_COLUMNS)
DISABLE_Z951 = (
    "prior_cabg.icd10cm.Z95.1,prior_cabg,Condition,code,http://hl7.org/fhir/sid/icd-10-cm,Z95.1,"
    "exact,true,patient,V,false,not coded here"
)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("cto-cds", path=str(Path(sys.executable).parent))
    command = [exe] if exe else [sys.executable, "-m", "cds"]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=60, check=False
    )


def make_site(tmp_path: Path, **files: str) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    for name, text in files.items():
        (site / name.replace("_", ".")).write_text(text)
    return site


def summary(rows: int, enabled: int, operators: int, site: Path | None = None) -> str:
    version = load_tables(site).version
    return f"{rows} rows ({enabled} enabled), {operators} operators, rules OK\nversion {version}\n"


@pytest.mark.parametrize("command", [["mappings"], ["mappings", "check"], ["mappings", "export"]])
def test_help(command: list[str]) -> None:
    done = run(*command, "--help")
    assert done.returncode == 0
    assert "Usage" in done.stdout


@pytest.mark.parametrize("site", ["empty", "defaults"])
def test_check_defaults(tmp_path: Path, site: str) -> None:
    directory = tmp_path if site == "empty" else DEFAULT_DIR
    rows = len(load_tables().rows)
    done = run("mappings", "check", str(directory))
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == summary(rows, rows, 0, directory)


def test_check_without_a_directory_checks_the_defaults() -> None:
    rows = len(load_tables().rows)
    done = run("mappings", "check")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == summary(rows, rows, 0)


def test_check_counts_site_changes(tmp_path: Path) -> None:
    site = make_site(
        tmp_path,
        codes_csv=f"{HEADER}\n{DISABLE_Z951}\n",
        operators_csv="npi,practitioner_id,annual_cto_volume,cto_years,last_year_success_rate,as_of,"
        "comment\n1234567893,,70,6,0.95,2026-11-01,\n",
    )
    rows = len(load_tables().rows)
    done = run("mappings", "check", str(site))
    assert done.returncode == 0, done.stderr
    assert done.stdout == summary(rows, rows - 1, 1, site)


@pytest.mark.parametrize(
    ("files", "where", "reason"),
    [
        (
            {
                "codes_csv": f"{HEADER}\n# comment\nx,blunt_stump,Observation,code,"
                "http://h.example/c,B,exact,boolean,lesion,site,true,\n"
            },
            "codes.csv:3: ",
            "concept 'blunt_stump' is neither a canonical input",
        ),
        (  # the fuzzed row: an empty ICD prefix made every patient with a diagnosis prior_cabg
            {
                "codes_csv": f"{HEADER}\nsite.dot,prior_cabg,Condition,code,"
                "http://hl7.org/fhir/sid/icd-10-cm,.,prefix,true,patient,site,true,typo\n"
            },
            "codes.csv:2: ",
            "code '.' is empty once normalised",
        ),
        (
            {"rules_yaml": "cabg_min_days_before: 90\ncabg_days: 30\n"},
            "rules.yaml:2: ",
            "cabg_days: Extra inputs are not permitted",
        ),
        (
            {"rules_yaml": "success: [\n  partial\n"},
            "rules.yaml:3: ",
            "invalid YAML",
        ),
        (
            {
                "operators_csv": "npi,practitioner_id,annual_cto_volume,cto_years,"
                "last_year_success_rate,as_of,comment\n123,,1,1,0.5,,\n"
            },
            "operators.csv:2: ",
            "npi '123' is not 10 digits",
        ),
        (  # loaded before, and shown on the card as is
            {
                "operators_csv": "npi,practitioner_id,annual_cto_volume,cto_years,"
                "last_year_success_rate,as_of,comment\n1234567893,,70,6,0.95,2999-11-01,\n"
            },
            "operators.csv:2: ",
            "as_of '2999-11-01' is in the future (today is ",
        ),
    ],
)
def test_check_bad_site_is_one_line_and_exit_2(
    tmp_path: Path, files: dict[str, str], where: str, reason: str
) -> None:
    site = make_site(tmp_path, **files)
    done = run("mappings", "check", str(site))
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"cto-cds: error: {site}/{where}"), lines[0]
    assert reason in lines[0]
    assert "Traceback" not in done.stderr


def test_check_missing_directory(tmp_path: Path) -> None:
    done = run("mappings", "check", str(tmp_path / "nope"))
    assert done.returncode == 2
    assert (
        done.stderr == f"cto-cds: error: {tmp_path / 'nope'}: mappings directory does not exist\n"
    )


def test_export_writes_resources_that_parse_and_validate(tmp_path: Path) -> None:
    out = tmp_path / "out" / "fhir"
    done = run("mappings", "export", "--out", str(out))
    assert done.returncode == 0, done.stderr
    expected = {f"ValueSet-{vs['id']}.json" for vs in value_sets(load_tables())}
    expected |= {"ConceptMap-cto-cds-inputs.json", "CodeSystem-cto-lesion.json"}
    expected |= {f"CodeSystem-cto-score-{kind}.json" for kind in ("method", "item", "band")}
    assert {p.name for p in out.iterdir()} == expected
    for path in out.iterdir():
        resource = json.loads(path.read_text(encoding="utf-8"))
        validate(resource)
        assert path.name == f"{resource['resourceType']}-{resource['id']}.json"
    codesystem = json.loads((out / "CodeSystem-cto-lesion.json").read_text())
    assert codesystem == json.loads((DEFAULT_DIR / "cto-lesion.codesystem.json").read_text())
    for generated in score_codesystems():  # the codes write-back puts in score Observations
        assert json.loads((out / f"CodeSystem-{generated['id']}.json").read_text()) == generated
    cabg = json.loads((out / "ValueSet-prior-cabg.json").read_text())
    icd = [
        i
        for i in cabg["compose"]["include"]
        if i["system"].endswith("icd-10-cm") and "concept" in i
    ]
    assert {c["code"] for c in icd[0]["concept"]} == {"Z95.1", "I25.810"}


def test_export_applies_the_site(tmp_path: Path) -> None:
    site = make_site(tmp_path, codes_csv=f"{HEADER}\n{DISABLE_Z951}\n")
    out = tmp_path / "out"
    done = run("mappings", "export", "--out", str(out), "--site", str(site))
    assert done.returncode == 0, done.stderr
    cabg = json.loads((out / "ValueSet-prior-cabg.json").read_text())
    codes = {c["code"] for i in cabg["compose"]["include"] for c in i.get("concept", [])}
    assert "Z95.1" not in codes
    assert "V45.81" in codes


def test_export_with_bad_site_writes_nothing(tmp_path: Path) -> None:
    site = make_site(tmp_path, rules_yaml="lm_ramus_as_lad: perhaps\n")
    out = tmp_path / "out"
    done = run("mappings", "export", "--out", str(out), "--site", str(site))
    assert done.returncode == 2
    assert done.stderr.startswith(f"cto-cds: error: {site}/rules.yaml:1: lm_ramus_as_lad: ")
    assert len(done.stderr.splitlines()) == 1
    assert not out.exists()


def test_export_without_fhir_extra_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hide_fhir_resources(monkeypatch)
    out = tmp_path / "out"
    done = CliRunner().invoke(app, ["mappings", "export", "--out", str(out)])
    assert done.exit_code == 2
    assert done.stderr.startswith("cto-cds: error: validating FHIR resources needs")
    assert "install cto-cds[fhir]" in done.stderr
    assert len(done.stderr.splitlines()) == 1
    assert not out.exists()
