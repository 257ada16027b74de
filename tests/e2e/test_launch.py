"""SMART launches against the real authorization server, without a browser (httpx follows the
redirects and keeps the cookies as a browser would)."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
import pytest

from tests.e2e.stack import DEMO_PATIENT, Stack

pytestmark = pytest.mark.integration


def test_standalone_launch_gets_the_patient_from_the_authorization_server(
    e2e_stack: Stack,
) -> None:
    with httpx.Client(follow_redirects=True, timeout=30) as browser:
        page = browser.get(f"{e2e_stack.app}/app/launch?" + urlencode({"iss": e2e_stack.fhir}))
        assert page.status_code == 200, page.text
        assert str(page.url).startswith(e2e_stack.app + "/app/?session=")
        assert f"Patient {DEMO_PATIENT}" in page.text
        asked = next(r for r in page.history if r.url.path == "/auth").url.params["scope"]
        assert asked.split()[0] == "launch/patient"


def test_replayed_callback_is_refused_without_a_second_exchange(e2e_stack: Stack) -> None:
    with httpx.Client(follow_redirects=True, timeout=30) as browser:
        page = browser.get(
            e2e_stack.launch_url(DEMO_PATIENT, f"ServiceRequest/{DEMO_PATIENT}-order")
        )
        assert page.status_code == 200
        callback = next(r for r in page.history if r.url.path == "/app/callback").url
        again = browser.get(callback)
        assert again.status_code == 400
        assert "already completed" in again.text
        assert "Read-only" not in page.text  # every write scope granted by this server
