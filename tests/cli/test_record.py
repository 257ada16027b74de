"""`cto-cds score --bundle / --fhir`: the JSON contract plus inputs with provenance; clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import cds.demo
from tests.cli.test_app import run

COHORT = str(Path(cds.demo.__file__).parent / "cohort.ndjson")


def test_bundle_json_has_scores_and_inputs_with_provenance() -> None:
    done = run(
        "score",
        "--bundle",
        COHORT,
        "--patient",
        "pt04",
        "--order",
        "ServiceRequest/pt04-order",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert set(out) >= {"scores", "inputs"}
    cabg = out["inputs"]["prior_cabg_target_vessel"]
    assert cabg["value"] is True
    assert set(cabg) >= {"value", "sources", "rule", "evidence", "note"}
    assert cabg["sources"]
    for mapped in out["inputs"].values():
        assert mapped["evidence"] in ("lesion", "patient", "claim", "not documented", "unknown")
    assert out["scores"]["operator_cto"]["items"][0]["present"] is True


def test_the_order_names_the_patient_in_a_multi_patient_bundle() -> None:
    done = run("score", "--bundle", COHORT, "--order", "ServiceRequest/pt04-order", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["inputs"]["prior_cabg_target_vessel"]["value"] is True  # pt04's record, as above
    assert any("Patient/pt04" in s for s in out["inputs"]["age_years"]["sources"])


def test_bundle_table_output() -> None:
    done = run("score", "--bundle", COHORT, "--patient", "pt01")
    assert done.returncode == 0, done.stderr
    assert "where they came from" in done.stdout
    assert "Operator-CTO" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bundle", COHORT], "holds"),  # several patients: --patient or --order needed
        (["--bundle", COHORT, "--order", "nope"], "no ServiceRequest/nope in the file"),
        (["--bundle", COHORT, "--patient", "nobody"], "Patient could not be read"),
        (["--bundle", COHORT, "--patient", "pt01", "--order", "Observation/x"], "--order"),
        (["--bundle", COHORT, "--patient", "bad id!"], "--patient"),
        (["--bundle", "/nonexistent.json"], "/nonexistent.json"),
        (["--fhir", "http://127.0.0.1:9/fhir"], "--patient"),
        # `Patient/..` would be the server's base once the HTTP client collapses the path.
        (["--fhir", "http://127.0.0.1:9/fhir", "--patient", ".."], 'FHIR id, got ".."'),
        (["--fhir", "ftp://x", "--patient", "p"], "--fhir"),
        (["--bundle", COHORT, "--patient", "pt01", "--today", "yesterday"], "--today"),
        (["--bundle", COHORT, "--fhir", "http://x"], "exactly one of"),
        ([], "exactly one of"),
    ],
)
def test_bad_record_options_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    done = run("score", *args)
    assert done.returncode == 2, done.stdout
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_unreachable_server_is_a_clear_error() -> None:
    done = run("score", "--fhir", "http://127.0.0.1:9/fhir", "--patient", "p1")
    assert done.returncode == 2
    assert "Patient could not be read" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_ca_bundle_is_one_line_naming_it(tmp_path: Path) -> None:
    # httpx reads SSL_CERT_FILE when the client is made: it was a FileNotFoundError traceback.
    bundle = tmp_path / "hospital-ca.pem"
    done = run(
        "score",
        "--fhir",
        "https://127.0.0.1:9/fhir",
        "--patient",
        "p1",
        env={"SSL_CERT_FILE": str(bundle)},
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"SSL_CERT_FILE: cannot use {str(bundle)!r}" in done.stderr


@pytest.mark.parametrize("value", ["soon", "0", "31"])
def test_a_bad_deadline_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CTO_CDS_FHIR_DEADLINE", value)
    done = run("score", "--fhir", "http://127.0.0.1:9/fhir", "--patient", "p1")
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "CTO_CDS_FHIR_DEADLINE: must be a number of seconds in (0, 30]" in done.stderr
    assert f'"{value}"' in done.stderr


def test_a_refused_fhir_url_is_not_repeated_with_its_password() -> None:
    done = run(
        "score", "--fhir", "http://u:s3cr3tpw@127.0.0.1:9/fhir?token=t0k3n", "--patient", "p1"
    )
    assert done.returncode == 2
    assert "s3cr3tpw" not in done.stderr
    assert "t0k3n" not in done.stderr
    assert "user-info" in done.stderr
