"""Hook context: service definitions, triggering on CTO-PCI orders only, settings validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cds.cdshooks.request import HookRequest
from cds.context.order import OrderTrigger, cto_pci_order, patient_id
from cds.context.services import load_services
from cds.errors import ConfigError, ContextError
from cds.http.state import order_trigger
from cds.mapping.tables import MappingTables, load_tables
from cds.settings import load_settings
from cds.sources.searches import patient_searches
from tests.mapping.fhir import CPT, LAD, SCT, cc


@pytest.fixture(scope="module")
def tables() -> MappingTables:
    return load_tables()


@pytest.fixture(scope="module")
def trigger(tables: MappingTables) -> OrderTrigger:
    return order_trigger(tables)


def draft(
    rid: str = "sr1", code: str = "92943", kind: str = "ServiceRequest", system: str = CPT
) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": kind,
        "id": rid,
        "status": "draft",
        "intent": "order",
        "code": cc(system, code),
        "subject": {"reference": "Patient/p1"},
        "bodySite": [cc(SCT, LAD)],
    }
    res["performer"] = (
        {"reference": "Practitioner/dr1"}
        if kind == "ProcedureRequest"
        else [{"reference": "Practitioner/dr1"}]
    )
    return res


def context(*drafts: dict[str, Any], selections: list[str] | None = None) -> dict[str, Any]:
    ctx: dict[str, Any] = {
        "patientId": "p1",
        "userId": "Practitioner/dr1",
        "draftOrders": {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": d} for d in drafts],
        },
    }
    if selections is not None:
        ctx["selections"] = selections
    return ctx


def test_cto_pci_order_triggers(trigger: OrderTrigger) -> None:
    order = cto_pci_order(
        "order-select", context(draft(), selections=["ServiceRequest/sr1"]), trigger
    )
    assert order is not None
    assert order["id"] == "sr1"


def test_other_orders_do_not_trigger(trigger: OrderTrigger) -> None:
    plain_pci = draft(code="92928")  # a stent PCI, not a CTO-PCI
    assert cto_pci_order("order-sign", context(plain_pci), trigger) is None
    unselected = context(draft(), draft("sr2", code="92928"), selections=["ServiceRequest/sr2"])
    assert cto_pci_order("order-select", unselected, trigger) is None
    med = {"resourceType": "MedicationRequest", "id": "m1"}
    assert cto_pci_order("order-sign", context(med), trigger) is None


def test_the_trigger_alone_decides() -> None:
    # Context knows no codes: whatever the passed-in check accepts is the CTO-PCI order.
    ctx = context(draft("a"), draft("b", code="92928"))
    assert cto_pci_order("order-sign", ctx, lambda order: order.id == "b") == draft(
        "b", code="92928"
    )
    assert cto_pci_order("order-sign", ctx, lambda order: False) is None


def test_a_cto_pci_order_that_cannot_be_read_is_refused_naming_the_element(
    trigger: OrderTrigger,
) -> None:
    """It got no card and no word, as if it were no CTO-PCI order."""
    order = {**draft(), "authoredOn": "２０２６-10-12"}  # full-width digits: not FHIR's
    with pytest.raises(ContextError) as raised:
        cto_pci_order("order-sign", context(order), trigger)
    assert (raised.value.loc, raised.value.msg) == (
        "ServiceRequest/sr1.authoredOn",
        "Value error, not a FHIR dateTime",
    )
    # Another order that cannot be read is still none of the service's business.
    other = {**draft(code="92928"), "authoredOn": "２０２６-10-12"}
    assert cto_pci_order("order-sign", context(other), trigger) is None
    unreadable_code = {**draft(), "code": "92943", "authoredOn": "２０２６-10-12"}
    assert cto_pci_order("order-sign", context(unreadable_code), trigger) is None


def test_order_sign_looks_at_every_draft(trigger: OrderTrigger) -> None:
    order = cto_pci_order("order-sign", context(draft("a", code="92928"), draft("b")), trigger)
    assert order is not None
    assert order["id"] == "b"


def test_stu3_procedure_request_is_read_as_a_service_request(trigger: OrderTrigger) -> None:
    order = cto_pci_order("order-sign", context(draft(kind="ProcedureRequest")), trigger)
    assert order is not None
    assert order["resourceType"] == "ServiceRequest"
    assert order["performer"] == [{"reference": "Practitioner/dr1"}]


@pytest.mark.parametrize(
    ("ctx", "loc"),
    [
        ({"patientId": "p1"}, "context.draftOrders"),
        (
            {"patientId": "p1", "draftOrders": {"entry": []}, "selections": "x"},
            "context.selections",
        ),
    ],
)
def test_unusable_context_is_a_400_naming_the_field(
    trigger: OrderTrigger, ctx: dict[str, Any], loc: str
) -> None:
    with pytest.raises(ContextError) as caught:
        cto_pci_order("order-select", ctx, trigger)
    assert caught.value.loc == loc


def test_patient_id_required() -> None:
    with pytest.raises(ContextError):
        patient_id({})


def test_fhir_authorization_requires_fhir_server() -> None:
    with pytest.raises(ValueError, match="fhirServer"):
        HookRequest.model_validate(
            {
                "hook": "order-sign",
                "hookInstance": "x",
                "context": {},
                "fhirAuthorization": {"access_token": "t"},
            }
        )


def test_access_token_is_hidden_in_repr() -> None:
    req = HookRequest.model_validate(
        {
            "hook": "order-sign",
            "hookInstance": "x",
            "context": {},
            "fhirServer": "http://f",
            "fhirAuthorization": {"access_token": "s3cret"},
        }
    )
    assert "s3cret" not in repr(req)


def test_shipped_services_prefetch_the_planned_searches() -> None:
    services = load_services()
    assert {(s.id, s.hook) for s in services} == {
        ("operator-cto", "order-select"),
        ("operator-cto", "order-sign"),
    }
    planned = {s.key: s.path.replace("p1", "{{context.patientId}}") for s in patient_searches("p1")}
    for service in services:
        assert service.prefetch == planned


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "id: x\nhook: order-select\ntitle: t\ndescription: d\nprefetch:\n  p: Patient/{{context.patientId}}\n",
            "prefetch key",
        ),
        (
            "id: x\nhook: order-select\ntitle: t\ndescription: d\nprefetch:\n  patient: Patient/{{context.draftOrders.id}}\n",
            "not a CDS Hooks 2.0 token",
        ),
        ("id: x\nhook: patient-view\ntitle: t\ndescription: d\n", "hook"),
        ("id: X!\nhook: order-select\ntitle: t\ndescription: d\n", "id"),
    ],
)
def test_bad_service_definitions_fail_at_start(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_services(tmp_path)
    assert "bad.yaml" in str(caught.value)


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"public_base_url": "ftp://x"}, "CTO_CDS_PUBLIC_BASE_URL"),
        ({"allowed_fhir_servers": "not a url"}, "CTO_CDS_ALLOWED_FHIR_SERVERS"),
        ({"fhir_deadline": 0}, "CTO_CDS_FHIR_DEADLINE"),
        ({"trusted_clients": "/nonexistent.yaml"}, "CTO_CDS_TRUSTED_CLIENTS"),
    ],
)
def test_misconfiguration_names_the_setting(env: dict[str, Any], name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings(**env)


def test_production_refuses_development_defaults() -> None:
    with pytest.raises(ConfigError, match="CTO_CDS_APP_CONTEXT_SECRET"):
        load_settings(environment="production", public_base_url="https://cds.example.org")


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://ehr.example.org/r4", True),
        ("https://ehr.example.org/r4/", True),
        ("https://ehr.example.org/r4/tenant", True),
        ("https://ehr.example.org/r44", False),
        ("http://ehr.example.org/r4", False),
        ("https://ehr.example.org.evil.com/r4", False),
        ("https://EHR.example.org/r4", True),
    ],
)
def test_fhir_server_allowlist(url: str, allowed: bool) -> None:
    settings = load_settings(allowed_fhir_servers="https://ehr.example.org/r4")
    assert settings.fhir_server_allowed(url) is allowed
