"""`cto-cds serve` refuses a bad setting in one line naming the variable, exit code 2, no traceback,
and never prints a secret (found by fuzzing the CTO_CDS_* variables)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cds.demo.ports import free_port

ONE_CLIENT = "- iss: https://ehr.example.org\n  jwks_url: https://ehr.example.org/jwks\n"
SECRET = "a-production-secret-0123456789abcdef"


def serve(tmp_path: Path, env: dict[str, str], *options: str) -> subprocess.CompletedProcess[str]:
    """`cto-cds serve` with only `env` set (a SQLite file in `tmp_path` unless `env` names one);
    a configuration it accepts starts a server, which the timeout then reports as a failure."""
    exe = shutil.which("cto-cds", path=str(Path(sys.executable).parent))
    command = [exe] if exe else [sys.executable, "-m", "cds"]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CTO_CDS_")}
    clean["CTO_CDS_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'cds.db'}"
    try:
        return subprocess.run(
            [*command, "serve", "--port", str(free_port()), *options],
            cwd=tmp_path,
            env=clean | env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"serve started with {env}")


def refused(done: subprocess.CompletedProcess[str], start: str) -> str:
    """The one error line, after checking the exit code and that nothing else was printed."""
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"cto-cds: error: {start}"), done.stderr
    return done.stderr


def production(tmp_path: Path, trust: str = ONE_CLIENT) -> dict[str, str]:
    path = tmp_path / "trusted.yaml"
    path.write_text(trust, "utf-8")
    return {
        "CTO_CDS_ENVIRONMENT": "production",
        "CTO_CDS_PUBLIC_BASE_URL": "https://cds.example.org",
        "CTO_CDS_APP_CONTEXT_SECRET": SECRET,
        "CTO_CDS_TRUSTED_CLIENTS": str(path),
    }


def test_production_refuses_an_empty_trust_list(tmp_path: Path) -> None:
    # It started, with a warning: every hook call would then be refused (401).
    line = refused(serve(tmp_path, production(tmp_path, "[]")), "CTO_CDS_TRUSTED_CLIENTS: ")
    assert "lists no client" in line


@pytest.mark.parametrize("secret", ["", "   ", "a"])
def test_production_refuses_a_short_app_context_secret(tmp_path: Path, secret: str) -> None:
    env = production(tmp_path) | {"CTO_CDS_APP_CONTEXT_SECRET": secret}
    refused(serve(tmp_path, env), "CTO_CDS_APP_CONTEXT_SECRET: must be at least 32 characters")


@pytest.mark.parametrize("key", ["foo", ""])
def test_a_bad_token_key_is_named_not_shown(tmp_path: Path, key: str) -> None:
    line = refused(serve(tmp_path, {"CTO_CDS_SMART_TOKEN_KEY": key}), "CTO_CDS_SMART_TOKEN_KEY: ")
    assert "not a Fernet key" in line
    assert "foo" not in line


@pytest.mark.parametrize(
    ("query", "message"),
    [
        # translated to asyncpg's ssl=require: then nothing listens on port 1
        ("sslmode=require", "cannot use the database"),
        ("foo=bar", "unknown query parameter 'foo'"),
    ],
)
def test_a_database_url_query_is_one_line(tmp_path: Path, query: str, message: str) -> None:
    url = f"postgresql+asyncpg://u:dbpw123@127.0.0.1:1/postgres?{query}"
    line = refused(serve(tmp_path, {"CTO_CDS_DATABASE_URL": url}), "CTO_CDS_DATABASE_URL: ")
    assert message in line
    assert "dbpw123" not in line


@pytest.mark.parametrize("url", ["sqlite+aiosqlite:///:memory:", "sqlite+aiosqlite://"])
def test_an_in_memory_database_is_one_line(tmp_path: Path, url: str) -> None:
    line = refused(serve(tmp_path, {"CTO_CDS_DATABASE_URL": url}), "CTO_CDS_DATABASE_URL: ")
    assert "in-memory SQLite database is not supported" in line


def test_a_sqlite_file_that_is_not_a_database_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("not a database, only some text long enough to hold a header\n" * 4)
    env = {"CTO_CDS_DATABASE_URL": f"sqlite+aiosqlite:///{path}"}
    line = refused(serve(tmp_path, env), "CTO_CDS_DATABASE_URL: ")
    assert f"{path}: file is not a database" in line


def test_a_deeply_nested_trust_file_is_one_line_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "trusted.yaml"
    path.write_text("- iss: " + "[" * 50_000 + "]" * 50_000 + "\n")
    line = refused(serve(tmp_path, {"CTO_CDS_TRUSTED_CLIENTS": str(path)}), f"{path}:1: ")
    assert "nested more than 16 levels deep" in line


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        # the unescaped @ made SQLAlchemy show u:***@SECRET@127.0.0.1
        (
            "CTO_CDS_DATABASE_URL",
            "postgresql+asyncpg://u:dbpw@SECRET@127.0.0.1:1/postgres",
            "postgresql+asyncpg://***@127.0.0.1:1/postgres",
        ),
        ("CTO_CDS_PUBLIC_BASE_URL", "https://user:pw123secret@h", "'https://***@h'"),
        ("CTO_CDS_ALLOWED_FHIR_SERVERS", "https://u:pw123secret@h/fhir", "'https://***@h/fhir'"),
    ],
)
def test_a_refused_url_never_shows_its_password(
    tmp_path: Path, name: str, value: str, shown: str
) -> None:
    line = refused(serve(tmp_path, {name: value}), f"{name}: ")
    assert shown in line
    assert "SECRET" not in line
    assert "pw123secret" not in line
    assert "dbpw" not in line


def test_a_trust_file_url_never_shows_its_token(tmp_path: Path) -> None:
    path = tmp_path / "trusted.yaml"
    path.write_text(
        "- iss: https://ehr.example.org\n  jwks_url: https://ehr.example.org/j?token=SECRET\n"
    )
    line = refused(serve(tmp_path, {"CTO_CDS_TRUSTED_CLIENTS": str(path)}), f"{path}:1: ")
    assert "'https://ehr.example.org/j?***' has a query" in line
    assert "SECRET" not in line


def test_a_bad_number_is_named_with_the_value_given(tmp_path: Path) -> None:
    line = refused(serve(tmp_path, {"CTO_CDS_FHIR_DEADLINE": "abc"}), "CTO_CDS_FHIR_DEADLINE: ")
    assert line.endswith(', got "abc"\n')


def test_an_empty_mappings_dir_is_one_line(tmp_path: Path) -> None:
    # It served with the current directory as the site's mapping overrides.
    line = refused(serve(tmp_path, {"CTO_CDS_MAPPINGS_DIR": ""}), "CTO_CDS_MAPPINGS_DIR: is empty")
    assert "current directory" in line


@pytest.mark.parametrize("root", ["absent.crt", "a-directory", "not-a-certificate.crt"])
@pytest.mark.parametrize("migrate", ["true", "false"])
def test_a_bad_tls_file_for_postgresql_is_one_line(tmp_path: Path, root: str, migrate: str) -> None:
    # asyncpg reads these files itself before connecting: FileNotFoundError, IsADirectoryError
    # and ssl.SSLError were tracebacks (no server is needed to reach them).
    (tmp_path / "a-directory").mkdir()
    (tmp_path / "not-a-certificate.crt").write_text("not a certificate\n")
    env = {
        "CTO_CDS_DATABASE_URL": "postgresql+asyncpg://cds:pw@127.0.0.1:1/cds?ssl=verify-full",
        "CTO_CDS_MIGRATE_ON_START": migrate,
        "PGSSLROOTCERT": str(tmp_path / root),
    }
    line = refused(serve(tmp_path, env), "CTO_CDS_DATABASE_URL: cannot use the database at ")
    assert "reading a TLS file (PGSSLROOTCERT" in line
    assert ":pw@" not in line


def test_a_bad_ca_bundle_for_outbound_tls_is_one_line(tmp_path: Path) -> None:
    # httpx read it inside uvicorn's start-up: a JSON-logged traceback and no service.
    env = {"SSL_CERT_FILE": str(tmp_path / "hospital-ca.pem")}
    line = refused(serve(tmp_path, env), f"SSL_CERT_FILE: cannot use '{tmp_path}/hospital-ca.pem'")
    assert line.rstrip().endswith(": no such file or directory")


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize(
    ("make", "why"), [("absent", "does not exist"), ("file", "is not a directory")]
)
def test_a_bad_shared_metrics_directory_is_one_line(
    tmp_path: Path, workers: str, make: str, why: str
) -> None:
    # prometheus-client wrote its first file inside the start-up: a traceback, and with several
    # workers each of them failed in turn.
    directory = tmp_path / "metrics"
    if make == "file":
        directory.write_text("")
    env = {"PROMETHEUS_MULTIPROC_DIR": str(directory)}
    done = serve(tmp_path, env, "--workers", workers)
    line = refused(done, f"PROMETHEUS_MULTIPROC_DIR: '{directory}' {why}")
    assert "--workers N` makes its own" in line
