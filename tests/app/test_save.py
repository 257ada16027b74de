"""Save on the review page (POST /app/save) against the fake EHR of conftest.py.

The EHR here holds one patient, one CTO-PCI order and whatever the app writes (a small in-memory
store behind respx, so the tests can count the writes and inject the FHIR server's refusals). The
write path itself is tested on the real FHIR server in tests/integration/test_writeback*.py and
end to end in tests/e2e/test_browser.py.
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
import httpx2  # what starlette's TestClient answers with
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from cds.app import save as save_form
from cds.demo.ehr import cto_pci_order
from cds.main import create_app
from cds.mapping.provenance import MappedInput
from cds.scoring.inputs import InputValue
from cds.writeback.identity import IDENTIFIER_SYSTEM
from tests.app.conftest import (
    BASE,
    CREATE_ONLY_SCOPE,
    ISS,
    PATIENT,
    Ehr,
    id_token,
    settings,
    signed_in,
    token_body,
)
from tests.store.conftest import PG_ENV

ORDER = cto_pci_order(order_id="o1", patient_id="p1")
PRACTITIONER = "Practitioner/dr-7"
CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


class FhirStore:
    """Patient p1, order o1, and the resources the app creates (ids o-1, o-2, …)."""

    def __init__(self) -> None:
        self.held: dict[str, dict[str, Any]] = {}
        self.writes: list[httpx.Request] = []
        self.refusal: httpx.Response | None = None

    def answer(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/fhir/")
        if not str(request.url).startswith(ISS + "/"):
            return httpx.Response(599)  # any other host: recorded, never reached
        if request.method == "POST":
            self.writes.append(request)
            if self.refusal is not None:
                return self.refusal
            body = dict(httpx.Response(200, content=request.content).json())
            body["id"] = f"w-{len(self.held) + 1}"
            ref = f"{body['resourceType']}/{body['id']}"
            self.held[ref] = body
            return httpx.Response(201, json=body, headers={"Location": f"{ISS}/{ref}/_history/1"})
        if request.method == "PUT" and path in self.held:
            self.writes.append(request)
            body = dict(httpx.Response(200, content=request.content).json())
            self.held[path] = body
            return httpx.Response(200, json=body)
        if request.method != "GET":
            self.writes.append(request)
            return httpx.Response(405)
        if path == "Patient/p1":
            return httpx.Response(200, json=PATIENT)
        if path == "ServiceRequest/o1":
            return httpx.Response(200, json=ORDER)
        if path == "Practitioner/dr-1":
            return httpx.Response(200, json={"resourceType": "Practitioner", "id": "dr-1"})
        if path == "metadata":
            return httpx.Response(404)
        kind = path.split("?")[0]
        query = {k: v[0] for k, v in parse_qs(request.url.query.decode()).items()}
        tokens = set((query.get("identifier") or query.get("_tag") or "").split(","))
        found = [
            r
            for ref, r in self.held.items()
            if ref.startswith(kind + "/")
            and (
                any(f"{i['system']}|{i['value']}" in tokens for i in r.get("identifier", []))
                or any(f"{t['system']}|{t['code']}" in tokens for t in r["meta"]["tag"])
            )
        ]
        if kind == "ServiceRequest":
            found = [ORDER]
        entries = [{"resource": r} for r in found]
        return httpx.Response(
            200, json={"resourceType": "Bundle", "type": "searchset", "entry": entries}
        )


@pytest.fixture
def store(ehr: Ehr) -> FhirStore:
    fhir = FhirStore()
    ehr.fhir.mock(side_effect=fhir.answer)
    ehr.anything.mock(side_effect=fhir.answer)  # the writes (conftest routes only GETs to ISS)
    ehr.token.respond(
        200,
        json=token_body(
            fhirContext=[{"reference": "ServiceRequest/o1"}],
            id_token=id_token(f"{ISS}/{PRACTITIONER}"),
        ),
    )
    return fhir


def _page_form(client: TestClient) -> dict[str, str]:
    page = client.get("/app/")
    assert page.status_code == 200, page.text
    token = CSRF.search(page.text)
    assert token is not None, "the Save form carries the session's anti-forgery token"
    return {"csrf": token.group(1)}


def _save(client: TestClient, form: dict[str, str]) -> httpx2.Response:
    response: httpx2.Response = client.post("/app/save", data=form)
    return response


FINDINGS = {"stump": "blunt", "occlusion_length_mm": "25", "ostial_location": "true"}


def test_save_creates_then_a_second_save_is_unchanged(client: TestClient, store: FhirStore) -> None:
    signed_in(client)
    form = _page_form(client) | FINDINGS
    first = _save(client, form)
    assert first.status_code == 200, first.text
    created = re.findall(r'<ul class="created">(.*?)</ul>', first.text)
    assert created, first.text
    assert "finding stump" in created[0]
    assert "score operator_cto" in created[0]
    assert any(ref.startswith("Provenance/") for ref in store.held)
    observations = [r for ref, r in store.held.items() if ref.startswith("Observation/")]
    stump = next(o for o in observations if "stump" in str(o["code"]))
    assert stump["performer"] == [{"reference": PRACTITIONER}]
    assert any(i["system"] == IDENTIFIER_SYSTEM for i in stump["identifier"])
    writes = len(store.writes)

    second = _save(client, form)
    assert second.status_code == 200
    assert len(store.writes) == writes, "the second save wrote nothing"
    assert 'class="unchanged"' in second.text
    assert 'class="created"' not in second.text
    assert "nothing was written" in second.text
    # The form shows what was saved.
    assert 'value="25"' in second.text


def test_read_only_session_gets_403_and_writes_nothing(
    client: TestClient, ehr: Ehr, store: FhirStore
) -> None:
    ehr.token.respond(200, json=token_body(scope="launch openid patient/*.rs"))
    signed_in(client)
    page = client.get("/app/")
    assert "Read-only" in page.text
    assert 'id="save"' not in page.text
    csrf = save_form.csrf_token("x", "y")  # not this session's token: refused before the scopes
    response = _save(client, {"csrf": csrf} | FINDINGS)
    assert response.status_code == 403
    assert store.writes == []


def test_read_only_with_the_right_token_is_still_403(
    client: TestClient, ehr: Ehr, store: FhirStore
) -> None:
    ehr.token.respond(200, json=token_body(scope="launch openid patient/*.rs"))
    signed_in(client)
    secret = client.app.state.cds.settings.app_context_secret.get_secret_value()  # type: ignore[attr-defined]
    csrf = save_form.csrf_token(secret, client.cookies["cto_cds_app"])
    response = _save(client, {"csrf": csrf} | FINDINGS)
    assert response.status_code == 403
    assert "Read-only" in response.text
    assert store.writes == []


def test_missing_or_forged_csrf_token_is_refused(client: TestClient, store: FhirStore) -> None:
    signed_in(client)
    _page_form(client)
    assert _save(client, FINDINGS).status_code == 403
    forged = _save(client, {"csrf": "0" * 64} | FINDINGS)
    assert forged.status_code == 403
    assert "anti-forgery" in forged.text
    for odd in ("é", "€" * 32, "\ufffd"):  # not ASCII: compare_digest raised TypeError, a 500
        refused = _save(client, {"csrf": odd} | FINDINGS)
        assert refused.status_code == 403, refused.text
        assert "anti-forgery" in refused.text
    assert store.writes == []


def test_a_field_given_twice_with_different_values_is_refused_and_nothing_written(
    client: TestClient, store: FhirStore
) -> None:
    """The last value used to win: a proxy or log reading the first saw another finding."""
    signed_in(client)
    form = _page_form(client)
    body = urlencode([*form.items(), ("stump", "blunt"), ("stump", "tapered")])
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    response = client.post("/app/save", content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert "the form gives &#x27;stump&#x27; more than one value" in response.text
    assert "&#x27;blunt&#x27;, &#x27;tapered&#x27;" in response.text
    assert store.writes == []
    # The same value twice is one value: saved.
    body = urlencode([*form.items(), ("stump", "blunt"), ("stump", "blunt")])
    assert client.post("/app/save", content=body, headers=headers).status_code == 200


@pytest.mark.parametrize(
    "typed",
    ["1_000", "\u0663", "\uff12\uff15", " 25 ", "+25", "1e-400", "1e309", "0x19", "25.0.1"],
)
def test_a_number_not_typed_as_a_number_is_refused_as_typed_and_nothing_is_written(
    client: TestClient, store: FhirStore, typed: str
) -> None:
    # Python's float() reads all of these (Arabic-Indic and full-width digits, underscores,
    # spaces; 1e-400 as 0): the EHR was sent the converted value while the page showed the text.
    signed_in(client)
    form = _page_form(client) | FINDINGS | {"occlusion_length_mm": typed}
    response = _save(client, form)
    assert response.status_code == 400, response.text
    error = re.search(
        r'<span class="field-error" id="err-occlusion_length_mm"[^>]*>(.*?)</span>', response.text
    )
    assert error is not None
    assert html.escape(json.dumps(typed, ensure_ascii=False)) in error.group(1)
    assert store.writes == []


@pytest.mark.parametrize(
    ("typed", "written"), [("25", 25), ("2.5", 2.5), (".5", 0.5), ("1e1", 10), ("-0.0", 0)]
)
def test_what_a_number_input_sends_is_written_as_that_number(
    client: TestClient, store: FhirStore, typed: str, written: float
) -> None:
    signed_in(client)
    form = _page_form(client) | FINDINGS | {"occlusion_length_mm": typed}
    assert _save(client, form).status_code == 200
    lengths = [
        r["valueQuantity"]["value"]
        for ref, r in store.held.items()
        if ref.startswith("Observation/") and r.get("valueQuantity", {}).get("code") == "mm"
    ]
    assert lengths == [written]
    assert str(lengths[0]) != "-0.0"


def test_bad_value_is_named_next_to_its_field_and_the_form_is_kept(
    client: TestClient, store: FhirStore
) -> None:
    signed_in(client)
    form = _page_form(client) | {
        "stump": "blunt",
        "occlusion_length_mm": "-4",
        "ostial_location": "true",
    }
    response = _save(client, form)
    assert response.status_code == 400, re.findall(r'save-(?:error|note)">[^<]*', response.text)
    error = re.search(
        r'<span class="field-error" id="err-occlusion_length_mm"[^>]*>(.*?)</span>', response.text
    )
    assert error is not None
    assert "occlusion_length_mm" in error.group(1)
    assert "-4" in error.group(1)
    assert 'id="in-occlusion_length_mm"' in response.text
    assert 'value="-4"' in response.text
    assert re.search(r'<option value="blunt" selected>', response.text)
    assert re.search(
        r'id="in-ostial_location"[^>]*>.*?<option value="true" selected>', response.text
    )
    assert store.writes == []


def test_fhir_server_error_is_shown_and_nothing_is_lost(
    client: TestClient, ehr: Ehr, store: FhirStore
) -> None:
    signed_in(client)
    form = _page_form(client) | FINDINGS
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "forbidden", "diagnostics": "no write for you"}],
    }
    store.refusal = httpx.Response(403, json=outcome)
    response = _save(client, form)
    assert response.status_code == 502
    message = re.search(r'<p class="save-error">(.*?)</p>', response.text)
    assert message is not None
    assert "Observation" in message.group(1)
    assert "HTTP 403" in message.group(1)
    assert "no write for you" in message.group(1)
    assert 'value="25"' in response.text
    assert re.search(r'<option value="blunt" selected>', response.text)
    assert CSRF.search(response.text), "the form can be saved again"
    assert store.held == {}
    assert len(store.writes) == 1, "the first refusal stops the save"


def test_nothing_entered_saves_nothing(client: TestClient, store: FhirStore) -> None:
    signed_in(client)
    response = _save(client, _page_form(client))
    assert response.status_code == 200
    assert "Nothing to save" in response.text
    assert store.writes == []


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "postgresql",
            marks=pytest.mark.skipif(not os.environ.get(PG_ENV), reason=f"set {PG_ENV}"),
        ),
    ]
)
def shared_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """One database for two app instances (two replicas): SQLite, and PostgreSQL when set."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
        return
    admin_url = make_url(os.environ[PG_ENV])
    name = f"cds_app_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(sql))
        finally:
            await engine.dispose()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_a_save_running_on_another_replica_gets_409_until_it_ends(
    tmp_path: Path, ehr: Ehr, store: FhirStore, shared_database: str
) -> None:
    """Two app instances on one database: while replica one's save waits on the FHIR server, the
    same session's save on replica two is refused with 409 and sends nothing; then it is free."""
    shared = settings(tmp_path, database_url=shared_database)
    started, release = threading.Event(), threading.Event()

    def slow_writes(request: httpx.Request) -> httpx.Response:
        if request.method in ("POST", "PUT"):
            started.set()
            release.wait(30)
        return store.answer(request)

    with (
        TestClient(create_app(shared), base_url=BASE, follow_redirects=False) as one,
        TestClient(create_app(shared), base_url=BASE, follow_redirects=False) as two,
    ):
        signed_in(one)
        form = _page_form(one) | FINDINGS
        cookie = {"Cookie": f"cto_cds_app={one.cookies['cto_cds_app']}"}
        ehr.anything.mock(side_effect=slow_writes)
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(one.post, "/app/save", data=form)
            assert started.wait(30), "replica one reached the FHIR server"
            busy = two.post("/app/save", data=form, headers=cookie)
            assert store.writes == [], "the refused save sent nothing (and one is still held)"
            release.set()
            assert first.result(timeout=60).status_code == 200
        assert busy.status_code == 409, busy.text
        assert "Save in progress" in busy.text

        again = two.post("/app/save", data=form, headers=cookie)
        assert again.status_code == 200, "the slot was released"
        assert "nothing was written" in again.text


@pytest.mark.parametrize(
    ("fhir_user", "expected"),
    [
        ("Practitioner/dr-1", "Practitioner/dr-1"),
        ("https://ehr.example/fhir/PractitionerRole/r9", "PractitionerRole/r9"),
        ("Patient/p1", None),
        ("Practitioner/bad id", None),
        (None, None),
    ],
)
def test_performer_is_a_practitioner_from_fhir_user(
    fhir_user: object, expected: str | None
) -> None:
    assert save_form.performer(fhir_user) == expected


def test_a_finding_saved_before_is_sent_again_even_when_an_older_report_disagrees() -> None:
    """The second Save must send the same findings (then unchanged), not fall back to the record."""
    won = MappedInput(
        value=True,
        sources=["Observation/saved-1", "Observation/report-1"],
        rule="ostial_location.finding",
        evidence="lesion",
        note="conflict: Observation/report-1 said False",
    )
    values: dict[str, InputValue | None] = {"ostial_location": True, "stump": "blunt"}
    same_as_record = MappedInput(
        value="blunt", sources=["Observation/report-2"], rule="r", evidence="lesion"
    )
    mapped = {"ostial_location": won, "stump": same_as_record}
    assert save_form.findings_to_save(values, mapped, frozenset({"Observation/saved-1"})) == {
        "ostial_location": True
    }
    assert save_form.findings_to_save(values, mapped) == {}
    assert save_form.findings_to_save({"stump": "tapered"}, mapped) == {"stump": "tapered"}


def _stump_ref(store: FhirStore) -> str:
    return next(
        ref
        for ref, r in store.held.items()
        if ref.startswith("Observation/") and "stump" in str(r["code"])
    )


def test_create_only_grant_refuses_a_change_before_writing_and_lists_what_needs_update(
    client: TestClient, ehr: Ehr, store: FhirStore
) -> None:
    ehr.token.respond(
        200,
        json=token_body(scope=CREATE_ONLY_SCOPE, fhirContext=[{"reference": "ServiceRequest/o1"}]),
    )
    signed_in(client)
    form = _page_form(client) | FINDINGS
    page = client.get("/app/")
    assert "Create only" in page.text
    assert _save(client, form).status_code == 200  # creating needs no update scope
    stump = _stump_ref(store)
    writes, held = len(store.writes), dict(store.held)

    changed = _save(client, form | {"stump": "tapered"})
    assert changed.status_code == 403
    needs = re.search(r'<ul class="needs-update">(.*?)</ul>', changed.text)
    assert needs is not None, changed.text
    assert f"{stump} (finding stump)" in needs.group(1)
    assert "score operator_cto" in needs.group(1)
    assert "create" in changed.text
    assert len(store.writes) == writes, "nothing written, not even the findings it could create"
    assert store.held == held
    assert re.search(r'<option value="tapered" selected>', changed.text), "the form is kept"
    assert CSRF.search(changed.text)


def test_update_scope_lets_a_changed_finding_update_in_place(
    client: TestClient, store: FhirStore
) -> None:
    signed_in(client)
    page = client.get("/app/")
    assert "Create only" not in page.text
    form = _page_form(client) | FINDINGS
    assert _save(client, form).status_code == 200
    stump = _stump_ref(store)
    changed = _save(client, form | {"stump": "tapered"})
    assert changed.status_code == 200, changed.text
    updated = re.search(r'<ul class="updated">(.*?)</ul>', changed.text)
    assert updated is not None, changed.text
    assert stump in updated.group(1)
    assert "tapered" in str(store.held[stump])
    assert [r.method for r in store.writes].count("PUT") >= 1
