"""check_same_patient: an order or a token for another patient is refused before anything is read."""

from __future__ import annotations

import pytest

from cds.errors import ContextError
from cds.http.hook_call import check_same_patient


def order(subject: object) -> dict[str, object]:
    return {"resourceType": "ServiceRequest", "id": "o1", "subject": subject}


@pytest.mark.parametrize(
    "reference",
    ["Patient/p1", "https://ehr.example.org/fhir/Patient/p1", "Patient/p1/_history/3"],
)
def test_the_same_patient_passes(reference: str) -> None:
    check_same_patient(order({"reference": reference}), "p1", "p1")
    check_same_patient(order({"reference": reference}), "p1", None)


def test_an_unresolvable_or_absent_subject_is_left_to_the_order_checks() -> None:
    check_same_patient(order({"reference": "urn:uuid:0f0e"}), "p1", None)
    check_same_patient(order(None), "p1", None)


@pytest.mark.parametrize("reference", ["Patient/p2", "Group/p1", "http://x.org/fhir/Patient/p2"])
def test_an_order_for_another_patient_is_refused_naming_both(reference: str) -> None:
    with pytest.raises(ContextError) as refused:
        check_same_patient(order({"reference": reference}), "p1", None)
    assert refused.value.loc == "context.draftOrders"
    assert refused.value.msg == (
        f"ServiceRequest/o1.subject is {reference!r} but context.patientId is 'p1':"
        " not the same patient"
    )


def test_a_token_for_another_patient_is_refused_naming_both() -> None:
    with pytest.raises(ContextError) as refused:
        check_same_patient(order({"reference": "Patient/p1"}), "p1", "p2")
    assert refused.value.loc == "fhirAuthorization.patient"
    assert "'p2'" in refused.value.msg
    assert "'p1'" in refused.value.msg
