"""End to end in a real browser: EHR launch → the page with sources → enter findings → band changes.

Real components only: sekmet-fhir with the cohort behind a SMART facade, the oidc-provider
authorization server, cto-cds served by uvicorn, Debian's chromium driven by Playwright.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cds.demo.cohort_data import COHORT_EXPECTED
from cds.scoring.engine import score_all
from cds.scoring.inputs import parse_inputs
from cds.scoring.scores.operator_cto import OPERATOR_CTO
from tests.e2e.stack import Stack

pytestmark = pytest.mark.integration

PATIENT = "pt02"  # RCA lesion at the top of "easy", its findings recorded


def _expected(patient: str) -> dict[str, Any]:
    doc = json.loads(COHORT_EXPECTED.read_text("utf-8"))
    entry = next(p for p in doc["patients"] if p["patient"] == patient)
    return {name: item["value"] for name, item in entry["inputs"].items()}


def test_ehr_launch_review_and_recompute(e2e_stack: Stack, browser: Any, tmp_path: Path) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(e2e_stack.launch_url(PATIENT, f"ServiceRequest/{PATIENT}-order"))
    page.wait_for_selector("#result", timeout=30_000)
    assert page.url == e2e_stack.app + "/app/"

    expected = _expected(PATIENT)
    before = score_all(parse_inputs(expected)).scores[OPERATOR_CTO.id]
    assert page.locator("#result .band").get_attribute("data-band") == before.band
    # Pre-filled from FHIR, with the source's resource type and evidence level.
    assert page.locator("#in-stump").input_value() == expected["stump"]
    stump_row = page.locator(".input", has=page.locator("#in-stump"))
    assert stump_row.get_attribute("data-state") == "from record"
    source = stump_row.locator(".source").inner_text()
    assert "Observation" in source or "DiagnosticReport" in source
    assert "lesion" in source
    assert f"Patient {PATIENT}" in page.locator(".banner").inner_text()

    # Two findings entered: the band recomputes through the app's JSON endpoint.
    changed = expected | {"ostial_location": True, "in_stent_occlusion": True}
    after = score_all(parse_inputs(changed)).scores[OPERATOR_CTO.id]
    assert after.band != before.band
    page.select_option("#in-ostial_location", "true")
    page.select_option("#in-in_stent_occlusion", "true")
    page.wait_for_function(
        "band => document.querySelector('#result .band').dataset.band === band",
        arg=after.band,
        timeout=10_000,
    )
    entered = page.locator(".input", has=page.locator("#in-ostial_location"))
    assert entered.get_attribute("data-state") == "entered"
    assert stump_row.get_attribute("data-state") == "from record"
    assert page.locator("#result .points").inner_text() == f"{after.points:g} points"

    # Tokens stay on the server: the app's only cookie is the opaque, HttpOnly session id (the
    # others on 127.0.0.1 are the authorization server's own, on other paths).
    ours = [c for c in context.cookies(e2e_stack.app + "/app/") if c["path"].startswith("/app")]
    assert [c["name"] for c in ours] == ["cto_cds_app"]
    assert ours[0]["httpOnly"]
    assert ours[0]["sameSite"] == "Lax"
    assert len(ours[0]["value"]) == 43
    assert "eyJ" not in page.content()  # no JWT anywhere in the page

    shot = tmp_path / "smart-app.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")
    context.close()


def test_iss_off_the_allowlist_in_the_browser(e2e_stack: Stack, browser: Any) -> None:
    page = browser.new_page()
    response = page.goto(f"{e2e_stack.app}/app/launch?iss=http://127.0.0.1:9/fhir&launch=x")
    assert response is not None
    assert response.status == 400
    assert "not one of CTO_CDS_ALLOWED_FHIR_SERVERS" in page.inner_text("main")
    page.close()
