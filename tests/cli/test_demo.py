"""`cto-cds demo` as a command group: the demo itself, and `demo load`'s refusals (no server needed).

Loading into a real server is tested in tests/integration/test_demo_load.py.
"""

from __future__ import annotations

import time
from pathlib import Path

from cds.demo.ports import free_port
from tests.cli.test_app import run


def test_load_from_an_unreachable_server_is_one_line_naming_the_url_and_exit_2() -> None:
    base = f"http://127.0.0.1:{free_port()}/fhir"
    started = time.monotonic()
    done = run("demo", "load", "--fhir", base, "--timeout", "1")
    assert done.returncode == 2
    assert done.stderr == (
        f"cto-cds: error: {base}/metadata: no FHIR server answered within 1 s (ConnectError)\n"
    )
    assert done.stdout == ""
    # It gave up after its timeout, not at once and not after the HTTP client's 60 s.
    assert 1 <= time.monotonic() - started < 30


def test_load_refuses_a_base_that_is_not_an_http_url() -> None:
    done = run("demo", "load", "--fhir", "ftp://fhir.example/r4")
    assert done.returncode == 2
    assert done.stderr.startswith("cto-cds: error: --fhir 'ftp://fhir.example/r4' ")
    assert done.stderr.count("\n") == 1


def test_load_refusing_a_url_with_a_password_does_not_repeat_it() -> None:
    done = run("demo", "load", "--fhir", "https://loader:pa@ss-w0rd@fhir.example/r4?token=t0k3n")
    assert done.returncode == 2
    assert "ss-w0rd" not in done.stderr
    assert "t0k3n" not in done.stderr
    assert "fhir.example" in done.stderr


def test_load_needs_a_base_url() -> None:
    done = run("demo", "load")
    assert done.returncode == 2
    assert "--fhir" in done.stderr


def test_demo_without_a_subcommand_still_runs_the_demo_and_checks_its_patients() -> None:
    # An unknown patient is refused before any server starts: proves `demo` alone reaches run_demo.
    done = run("demo", "--patient", "pt99")
    assert done.returncode == 2
    assert done.stderr.startswith("cto-cds: error: unknown demo patient pt99; valid ids: pt01")


def test_load_with_a_bad_ca_bundle_is_one_line_naming_it(tmp_path: Path) -> None:
    # httpx reads SSL_CERT_FILE when its client is made: a FileNotFoundError traceback.
    bundle = tmp_path / "hospital-ca.pem"
    done = run(
        "demo", "load", "--fhir", "https://fhir.example/r4", env={"SSL_CERT_FILE": str(bundle)}
    )
    assert done.returncode == 2
    assert done.stderr == (
        f"cto-cds: error: SSL_CERT_FILE: cannot use {str(bundle)!r} as the CA certificates for "
        "outbound TLS (FHIR servers, JWKS URLs, SMART): no such file or directory\n"
    )
