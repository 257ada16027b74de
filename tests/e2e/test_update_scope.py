"""Update scopes end to end (real authorization server, real FHIR server behind the SMART facade).

A grant without `u` (the authorization server downgrades `.cu` to `.c` for this launch) lets Save
create, and refuses a change of a finding it saved before with a 403 page naming each resource that
would need an update, before anything is written. With `.cu` the same change updates in place,
through the facade's entry-by-entry scope check of the transaction.
"""

from __future__ import annotations

import re

import httpx
import pytest

from cds.demo.smart_facade import denied_entries
from cds.writeback.identity import IDENTIFIER_SYSTEM
from tests.e2e.stack import Stack

pytestmark = pytest.mark.integration
PATIENT = "pt03"  # not the browser test's patient: its saves stay separate
ORDER = f"ServiceRequest/{PATIENT}-order"
CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


def _signed_in(client: httpx.Client, stack: Stack, **launch: object) -> str:
    page = client.get(stack.launch_url(PATIENT, ORDER, **launch))
    assert page.status_code == 200, page.text
    return page.text


def _save(client: httpx.Client, stack: Stack, page: str, **fields: str) -> httpx.Response:
    token = CSRF.search(page)
    assert token is not None, "Save is offered"
    return client.post(f"{stack.app}/app/save", data={"csrf": token.group(1)} | fields)


def _stump(stack: Stack) -> dict[str, object]:
    """The stump finding the app wrote for PATIENT, read from sekmet by its identifier."""
    with httpx.Client(base_url=stack.sekmet, timeout=30.0) as fhir:
        found = fhir.get("Observation", params={"subject": f"Patient/{PATIENT}", "_count": 200})
        for entry in found.raise_for_status().json().get("entry", []):
            resource: dict[str, object] = entry["resource"]
            ours = any(i.get("system") == IDENTIFIER_SYSTEM for i in resource.get("identifier", []))  # type: ignore[attr-defined]
            if ours and "stump" in str(resource.get("code")):
                return resource
    raise AssertionError("no saved stump finding")


def test_create_only_grant_refuses_an_update_then_cu_updates(e2e_stack: Stack) -> None:
    with httpx.Client(follow_redirects=True, timeout=60) as browser:
        page = _signed_in(browser, e2e_stack, grant_update=False)
        assert "Create only" in page
        created = _save(browser, e2e_stack, page, stump="tapered")  # the record says no_stump
        assert created.status_code == 200, created.text
        assert "finding stump" in created.text
        saved = _stump(e2e_stack)

        refused = _save(browser, e2e_stack, page, stump="blunt")
        assert refused.status_code == 403, refused.text
        needs = re.search(r'<ul class="needs-update">(.*?)</ul>', refused.text, re.S)
        assert needs is not None, refused.text
        assert f"Observation/{saved['id']} (finding stump)" in needs.group(1)
        assert _stump(e2e_stack)["meta"] == saved["meta"], "nothing written"
        assert re.search(r'<option value="blunt" selected>', refused.text), "the form is kept"

    with httpx.Client(follow_redirects=True, timeout=60) as browser:
        page = _signed_in(browser, e2e_stack)
        assert "Create only" not in page
        updated = _save(browser, e2e_stack, page, stump="blunt")
        assert updated.status_code == 200, updated.text
        listed = re.search(r'<ul class="updated">(.*?)</ul>', updated.text, re.S)
        assert listed is not None, updated.text
        assert f"Observation/{saved['id']}" in listed.group(1)
        after = _stump(e2e_stack)
        assert after["id"] == saved["id"]
        assert "blunt" in str(after.get("valueCodeableConcept"))


def test_facade_checks_each_transaction_entry_against_the_scopes() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"request": {"method": "POST", "url": "Observation"}},
            {"request": {"method": "PUT", "url": "Observation/7"}},
            {"request": {"method": "POST", "url": "Provenance"}},
            {"request": {"method": "GET", "url": "Patient/p1"}},
        ],
    }
    create_only = {"patient/Observation.c", "patient/Provenance.c", "patient/Patient.r"}
    assert denied_entries(create_only, bundle) == ["PUT Observation/7"]
    assert denied_entries(create_only | {"patient/Observation.cu"}, bundle) == []
    assert denied_entries({"patient/*.rs"}, bundle) == [
        "POST Observation",
        "PUT Observation/7",
        "POST Provenance",
    ]
    conditional = {"entry": [{"request": {"method": "PUT", "url": "Observation?identifier=x"}}]}
    assert denied_entries({"patient/Observation.u"}, conditional) == [
        "PUT Observation?identifier=x"
    ]
    assert denied_entries({"patient/Observation.cu"}, conditional) == []
    assert denied_entries(set(), {"entry": [{"fullUrl": "x"}]}) == ["an entry without request"]
