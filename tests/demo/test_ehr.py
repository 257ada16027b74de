"""The demo EHR's hook requests (CH-07, CH-09) are valid FHIR and carry what the spec requires."""

from __future__ import annotations

import socket
import uuid

import pytest
from fhir.resources.R4B import get_fhir_model_class as r4b_model
from fhir.resources.STU3 import get_fhir_model_class as stu3_model

from cds.demo.ehr import hook_request, order_select_request, order_sign_request
from cds.demo.ports import free_port
from tests.fixtures.fhir_build import LAD

FHIR = "https://ehr.example.org/fhir"


def test_order_select_r4() -> None:
    prefetch = {"patient": None}
    body = order_select_request(
        fhir_server=FHIR, patient_id="p9", performer_id="op-3", encounter_id="e1", prefetch=prefetch
    )
    assert body["hook"] == "order-select"
    assert uuid.UUID(body["hookInstance"])
    assert body["fhirServer"] == FHIR
    assert body["prefetch"] is prefetch
    assert "fhirAuthorization" not in body
    context = body["context"]
    assert (context["userId"], context["patientId"], context["encounterId"]) == (
        "Practitioner/op-3",
        "p9",
        "e1",
    )
    assert context["selections"] == ["ServiceRequest/cto-pci-1"]
    r4b_model("Bundle").model_validate(context["draftOrders"])
    assert context["draftOrders"]["type"] == "collection"
    order = context["draftOrders"]["entry"][0]["resource"]
    r4b_model("ServiceRequest").model_validate(order)
    assert (order["status"], order["intent"]) == ("draft", "order")
    assert order["code"]["coding"][0]["code"] == "92943"
    assert order["bodySite"][0]["coding"][0]["system"] == "http://snomed.info/sct"
    assert order["performer"] == [{"reference": "Practitioner/op-3"}]
    assert order["subject"] == {"reference": "Patient/p9"}


def test_order_sign_stu3() -> None:
    auth = {
        "access_token": "t",
        "token_type": "Bearer",
        "expires_in": 30,
        "scope": "x",
        "subject": "s",
    }
    body = order_sign_request(
        fhir_server=FHIR, fhir_version="STU3", site=LAD, fhir_authorization=auth, encounter_id="e"
    )
    assert body["hook"] == "order-sign"
    assert body["fhirAuthorization"] == auth
    assert "selections" not in body["context"]
    assert "encounterId" in body["context"]
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    stu3_model("ProcedureRequest").model_validate(order)
    assert order["resourceType"] == "ProcedureRequest"
    assert order["bodySite"][0]["coding"][0]["code"] == LAD.code


def test_optional_fields_are_omitted_and_authorization_needs_a_server() -> None:
    body = order_sign_request()
    assert set(body) == {"hook", "hookInstance", "context"}
    assert "encounterId" not in body["context"]
    with pytest.raises(ValueError, match="fhirServer"):
        order_select_request(fhir_authorization={"access_token": "t"})


def test_hook_request_sends_a_given_order_as_a_draft_with_its_prefetch() -> None:
    order = {
        "resourceType": "ServiceRequest",
        "id": "pt01-order",
        "status": "active",
        "subject": {"reference": "Patient/pt01"},
        "performer": [{"reference": "Practitioner/op-expert"}],
    }
    patient = {"resourceType": "Patient", "id": "pt01"}
    body = hook_request(
        "order-select",
        order=order,
        patient_id="pt01",
        fhir_server="https://fhir.example/r4",
        prefetch={"patient": patient},
    )
    draft = body["context"]["draftOrders"]["entry"][0]["resource"]
    assert draft == {**order, "status": "draft"}
    assert order["status"] == "active"  # the caller's resource is not changed
    assert body["context"]["selections"] == ["ServiceRequest/pt01-order"]
    assert body["context"]["userId"] == "Practitioner/op-expert"
    assert body["context"]["patientId"] == "pt01"
    assert body["prefetch"] == {"patient": patient}
    assert body["fhirServer"] == "https://fhir.example/r4"
    assert "selections" not in hook_request("order-sign", order=order)["context"]


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        assert sock.getsockname()[1] == port
