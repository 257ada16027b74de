"""`cto-cds save`: option and inputs validation, one line on stderr and exit code 2.

Saving against a real FHIR server is in tests/integration/test_writeback_cli.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_app import run

BASE = "http://127.0.0.1:9/fhir"  # discard port: nothing listens, nothing may be written


def inputs(tmp_path: Path, content: object) -> str:
    path = tmp_path / "findings.json"
    path.write_text(json.dumps(content))
    return str(path)


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        (
            {"stump": "blunt", "age_years": 70},
            [],
            "inputs.age_years: save writes lesion findings only",
        ),
        (
            {"stump": "Blunt"},
            [],
            'inputs.stump: must be one of tapered, blunt, no_stump, got "Blunt"',
        ),
        ({"stump": None}, [], "no lesion finding to save"),
        ({"stump": "blunt"}, ["--user", "Patient/1"], "--user: must be Practitioner/ID"),
        (
            {"stump": "blunt"},
            ["--order", "Procedure/1"],
            "--order: must be ServiceRequest/ID or ID",
        ),
        ({"stump": "blunt"}, ["--token-env", "CTO_CDS_UNSET_VARIABLE"], "names an empty or unset"),
    ],
)
def test_bad_options_and_inputs_give_one_line_and_exit_2(
    tmp_path: Path, content: object, extra: list[str], message: str
) -> None:
    done = run(
        "save", "--fhir", BASE, "--patient", "p1", "--inputs", inputs(tmp_path, content), *extra
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert "inputs.inputs" not in done.stderr  # the field named once, as `cto-cds score` names it
    assert len(done.stderr.strip().splitlines()) == 1
    assert done.stdout == ""


def test_an_unreachable_server_is_one_line_naming_the_patient(tmp_path: Path) -> None:
    done = run(
        "save", "--fhir", BASE, "--patient", "p1", "--inputs", inputs(tmp_path, {"stump": "blunt"})
    )
    assert done.returncode == 2
    assert "Patient/p1: cannot be read" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_file_that_is_not_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{stump")
    done = run("save", "--fhir", BASE, "--patient", "p1", "--inputs", str(path))
    assert done.returncode == 2
    assert f"{path}: not valid JSON" in done.stderr


@pytest.mark.parametrize(
    "fhir", ["http://user:s3cretpw@127.0.0.1:9/fhir", "ftp://user:s3cretpw@127.0.0.1:9/fhir"]
)
def test_a_refused_fhir_url_is_repeated_masked(tmp_path: Path, fhir: str) -> None:
    # The line repeated --fhir as given: a password in it went to the terminal and the logs.
    path = inputs(tmp_path, {"stump": "blunt"})
    done = run("save", "--fhir", fhir, "--patient", "p1", "--inputs", path)
    assert done.returncode == 2
    assert "s3cretpw" not in done.stderr
    assert "***@127.0.0.1:9/fhir" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("token", ["s3cret\n", "s3cr\u00e9t", " s3cret"])
def test_a_token_that_cannot_be_a_header_names_the_variable_not_the_token(
    tmp_path: Path, token: str
) -> None:
    # It was "Patient/p1: cannot be read (... server error (LocalProtocolError))": the server
    # blamed for a token with a newline or a non-ASCII character that was never sent.
    path = inputs(tmp_path, {"stump": "blunt"})
    done = run(
        *("save", "--fhir", BASE, "--patient", "p1", "--inputs", path),
        *("--token-env", "CTO_CDS_TEST_TOKEN"),
        env={"CTO_CDS_TEST_TOKEN": token},
    )
    assert done.returncode == 2
    assert "--token-env: holds a token that cannot be sent in an HTTP header" in done.stderr
    assert "CTO_CDS_TEST_TOKEN" in done.stderr
    assert "s3cr" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_bad_ca_bundle_is_one_line_naming_it(tmp_path: Path) -> None:
    # httpx reads SSL_CERT_FILE when its client is made: a FileNotFoundError traceback.
    bundle = tmp_path / "hospital-ca.pem"
    done = run(
        "save", "--fhir", BASE, "--patient", "p1", "--inputs", inputs(tmp_path, {"stump": "blunt"}),
        env={"SSL_CERT_FILE": str(bundle)},
    )  # fmt: skip
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert f"SSL_CERT_FILE: cannot use {str(bundle)!r}" in done.stderr
