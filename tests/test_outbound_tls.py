"""A bad SSL_CERT_FILE / SSL_CERT_DIR (how a site trusts its internal CA for the FHIR servers) is
one line naming the variable, read as httpx reads it; a good one, or none, passes."""

from __future__ import annotations

from pathlib import Path

import certifi
import httpx
import pytest

from cds.errors import ConfigError
from cds.outbound_tls import check_outbound_tls

SYSTEM_BUNDLE = Path(certifi.where())


@pytest.fixture(autouse=True)
def no_ca_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda d: d / "absent.pem", "no such file or directory"),
        (lambda d: d, "is a directory"),
        (lambda d: _written(d / "ca.pem", "not a certificate\n"), "no PEM certificate in it"),
    ],
)
def test_a_bad_ca_file_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make: object, why: str
) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    monkeypatch.setenv("SSL_CERT_FILE", str(path))
    with pytest.raises(ConfigError) as refused:
        check_outbound_tls()
    assert str(refused.value) == (
        f"SSL_CERT_FILE: cannot use {str(path)!r} as the CA certificates for outbound TLS "
        f"(FHIR servers, JWKS URLs, SMART): {why}"
    )
    # What the check stands in for: httpx itself fails on the same variable.
    with pytest.raises(OSError):  # noqa: PT011 - FileNotFoundError, IsADirectoryError, SSLError
        httpx.Client()


def test_a_ca_directory_that_is_not_one_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "absent"))
    with pytest.raises(ConfigError, match=r"^SSL_CERT_DIR: cannot use .*: not a directory$"):
        check_outbound_tls()


def test_the_file_wins_over_the_directory_as_in_httpx(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", SYSTEM_BUNDLE.as_posix())
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "absent"))  # httpx never reads it then
    check_outbound_tls()
    with httpx.Client():
        pass


def test_no_variable_is_certifis_public_cas() -> None:
    check_outbound_tls()


def _written(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
