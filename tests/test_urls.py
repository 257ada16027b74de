"""cds.urls: one parser for every allowlist (FHIR servers, FHIR next links, JWKS/jku)."""

from __future__ import annotations

import pytest

from cds.auth.trust import jku_matches
from cds.errors import SourceError
from cds.settings import Settings
from cds.sources.fhir import FhirBase
from cds.urls import UrlError, base_url, is_under, masked, parse_url

BASE = "https://ehr.example.org/r4"

# Under the allowed prefix by naive string comparison, but not a safe base (CH-12).
HOSTILE = [
    BASE + "/../admin",
    BASE + "/./x",
    BASE + "/..%2fadmin",
    BASE + "/%2E%2E/admin",
    BASE + "/%2e%2e",
    BASE + "%2F..%2Fadmin",
    BASE + "/a%5C..",
    BASE + "/a%00b",
    BASE + "?tenant=1",
    BASE + "#x",
    BASE + "/ x",
    BASE + "\n",
    BASE + "/\t",
    BASE + "/a\\b",
    "https://user@ehr.example.org/r4",
    "https://ehr.example.org:99999/r4",
    "https://ehr.exаmple.org/r4",  # Cyrillic а
]


@pytest.mark.parametrize("url", HOSTILE)
def test_every_allowlist_refuses_the_same_hostile_urls(url: str) -> None:
    with pytest.raises(UrlError):
        parse_url(url)
    assert not Settings(allowed_fhir_servers=[BASE]).fhir_server_allowed(url)
    assert not FhirBase(BASE).contains(url) or "?" in url  # next links may carry a query
    assert not jku_matches(BASE, url)
    with pytest.raises(SourceError):
        FhirBase(url)


@pytest.mark.parametrize(
    ("url", "under"),
    [
        (BASE, True),
        (BASE + "/", True),
        (BASE + "/tenant/a", True),
        ("https://EHR.example.org:443/r4", True),
        (BASE + "4", False),
        ("http://ehr.example.org/r4", False),
        ("https://ehr.example.org:8443/r4", False),
        ("https://ehr.example.org.evil.com/r4", False),
    ],
)
def test_the_three_allowlists_agree(url: str, under: bool) -> None:
    assert is_under(BASE, url, query=False) is under
    assert Settings(allowed_fhir_servers=[BASE]).fhir_server_allowed(url) is under
    assert FhirBase(BASE).contains(url) is under
    assert jku_matches(BASE, url) is under


def test_messages_say_what_is_wrong_without_the_url() -> None:
    with pytest.raises(UrlError, match="percent-encoded") as info:
        parse_url(BASE + "/..%2fPatient/pt-secret")
    assert "pt-secret" not in str(info.value)
    with pytest.raises(UrlError, match="https"):
        parse_url("http://ehr.example.org/jwks", https_only=True)
    assert base_url("http://127.0.0.1:8080/fhir/") == "http://127.0.0.1:8080/fhir"


def test_a_next_link_may_carry_a_query_a_base_may_not() -> None:
    assert is_under(BASE, BASE + "?_getpages=1&_page=2")
    assert not is_under(BASE, BASE + "?_getpages=1", query=False)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://ehr.example.org/fhir", "https://ehr.example.org/fhir"),
        ("https://user:pw123secret@h", "https://***@h"),
        ("https://u:pw123secret@h/fhir", "https://***@h/fhir"),
        (
            "postgresql+asyncpg://u:dbpw@SECRET@127.0.0.1:5432/db",
            "postgresql+asyncpg://***@127.0.0.1:5432/db",
        ),
        ("postgresql://u:p/w?x#y@h/db", "postgresql://***@h/db"),
        ("https://ehr.example.org/jwks?token=SECRET", "https://ehr.example.org/jwks?***"),
        ("https://ehr.example.org/cb#access_token=SECRET", "https://ehr.example.org/cb#***"),
        ("sqlite+aiosqlite:////var/lib/cds.db", "sqlite+aiosqlite:////var/lib/cds.db"),
        ("u:pw@host", "u:***@host"),
        ("not a url", "not a url"),
    ],
)
def test_masked_hides_user_info_up_to_the_last_at_and_the_query(url: str, shown: str) -> None:
    assert masked(url) == shown
