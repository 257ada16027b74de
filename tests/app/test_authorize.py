"""PKCE S256 and state (SM-03)."""

from __future__ import annotations

from cds.app.authorize import authorization_url, challenge_of, new_pkce, new_state
from tests.app.conftest import query


def test_challenge_matches_rfc7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert challenge_of(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_verifier_and_state_are_fresh_and_long() -> None:
    pairs = {new_pkce() for _ in range(50)}
    assert len({p.verifier for p in pairs}) == 50
    assert all(
        43 <= len(p.verifier) <= 128 and challenge_of(p.verifier) == p.challenge for p in pairs
    )
    states = {new_state() for _ in range(50)}
    assert len(states) == 50
    assert min(len(s) for s in states) * 6 >= 256


def test_url_keeps_an_existing_query_and_omits_launch_when_standalone() -> None:
    url = authorization_url(
        "https://as.example/auth?tenant=a",
        client_id="c",
        redirect_uri="https://app/cb",
        scope="launch/patient openid",
        state="s",
        aud="https://fhir",
        challenge="ch",
        launch=None,
    )
    sent = query(url)
    assert sent["tenant"] == "a"
    assert sent["code_challenge_method"] == "S256"
    assert "launch" not in sent
    assert sent["aud"] == "https://fhir"
