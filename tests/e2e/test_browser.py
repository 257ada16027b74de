"""End to end in a real browser: EHR launch → the page with sources → enter findings → band changes
→ Save → created → Save again → unchanged → one copy of each resource → the next card's band.

Real components only: sekmet-fhir with the cohort behind a SMART facade, the oidc-provider
authorization server, cto-cds served by uvicorn, Debian's chromium driven by Playwright.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from cds.demo.cohort_data import COHORT_EXPECTED
from cds.demo.ehr import hook_request
from cds.output.wording import band_name
from cds.scoring.engine import score_all
from cds.scoring.inputs import parse_inputs
from cds.scoring.scores.operator_cto import OPERATOR_CTO
from cds.writeback.identity import IDENTIFIER_SYSTEM
from tests.e2e.stack import Stack
from tests.integration.service_harness import auth, service

pytestmark = pytest.mark.integration
SERVICE = "/cds-services/operator-cto"

PATIENT = "pt02"  # RCA lesion at the top of "easy", its findings recorded


def _expected(patient: str) -> dict[str, Any]:
    doc = json.loads(COHORT_EXPECTED.read_text("utf-8"))
    entry = next(p for p in doc["patients"] if p["patient"] == patient)
    return {name: item["value"] for name, item in entry["inputs"].items()}


def test_ehr_launch_review_recompute_save_and_next_card(
    e2e_stack: Stack, browser: Any, tmp_path: Path
) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(e2e_stack.launch_url(PATIENT, f"ServiceRequest/{PATIENT}-order"))
    page.wait_for_selector("#result", timeout=30_000)
    assert page.url.startswith(e2e_stack.app + "/app/?session=")

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

    # Save: the two findings are written through the write path; the page lists what was created.
    saves: list[str] = []
    page.on("request", lambda r: saves.append(r.url) if r.url.endswith("/app/save") else None)
    with page.expect_navigation():
        page.click("#save")
    page.wait_for_selector("#save-result", timeout=30_000)
    assert page.locator("#save-result ul.created").count() == 1, page.inner_text("#save-result")
    created = page.locator("#save-result ul.created code").all_inner_texts()
    labels = page.locator("#save-result ul.created").inner_text()
    assert "finding ostial_location" in labels
    assert "finding in_stent_occlusion" in labels
    assert "score operator_cto" in labels
    assert page.locator("#result .band").get_attribute("data-band") == after.band
    assert page.locator("#in-ostial_location").input_value() == "true"

    # Save again: nothing is written, everything is reported unchanged.
    with page.expect_navigation():
        page.click("#save")
    page.wait_for_selector("#save-result", timeout=30_000)
    assert page.locator("#save-result ul.unchanged").count() == 1, page.inner_text("#save-result")
    assert page.locator("#save-result ul.created").count() == 0
    assert "nothing was written" in page.locator("#save-result").inner_text()
    unchanged = page.locator("#save-result ul.unchanged code").all_inner_texts()
    assert sorted(unchanged) == sorted(created)
    assert len(saves) == 2  # one POST per click

    shot = tmp_path / "smart-app.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")
    context.close()

    # Exactly one copy of each written resource on the FHIR server, found by its identifier.
    with httpx.Client(base_url=e2e_stack.sekmet, timeout=30.0) as fhir:
        for ref in created:
            resource = fhir.get(ref).raise_for_status().json()
            ident = next(i for i in resource["identifier"] if i["system"] == IDENTIFIER_SYSTEM)
            token = f"{IDENTIFIER_SYSTEM}|{ident['value']}"
            kind = ref.split("/")[0]
            param = "identifier" if kind == "Observation" else "_tag"  # sekmet: see write-back.md
            found = fhir.get(kind, params={param: token}).raise_for_status().json()
            assert [e["resource"]["id"] for e in found.get("entry", [])] == [resource["id"]], ref
        provenances = fhir.get("Provenance", params={"_count": 500}).json().get("entry", [])
        targets = [
            {t["reference"] for t in e["resource"]["target"]}
            for e in provenances
            if set(created) & {t["reference"] for t in e["resource"]["target"]}
        ]
        assert targets == [set(created)]
        order = fhir.get(f"ServiceRequest/{PATIENT}-order").raise_for_status().json()

    # The next order-select reads the saved findings: its card shows the new band.
    body = hook_request(
        "order-select", order=order, patient_id=PATIENT, fhir_server=e2e_stack.sekmet
    )
    with service(tmp_path, e2e_stack.sekmet) as cds:
        response = cds.post(SERVICE, json=body, headers=auth(SERVICE))
    assert response.status_code == 200, response.text
    card_summary = response.json()["cards"][0]["summary"]
    assert after.band is not None
    assert f"— {band_name(after.band)}" in card_summary, card_summary
    assert f"{after.points:g} —" in card_summary, card_summary


def test_iss_off_the_allowlist_in_the_browser(e2e_stack: Stack, browser: Any) -> None:
    page = browser.new_page()
    response = page.goto(f"{e2e_stack.app}/app/launch?iss=http://127.0.0.1:9/fhir&launch=x")
    assert response is not None
    assert response.status == 400
    assert "not one of CTO_CDS_ALLOWED_FHIR_SERVERS" in page.inner_text("main")
    page.close()
