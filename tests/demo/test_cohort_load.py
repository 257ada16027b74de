"""`wait_for_metadata`: what counts as a FHIR server being up (faults injected with respx, no sleeping).

Loading into a real server: tests/integration/test_demo_load.py."""

from __future__ import annotations

import httpx
import pytest
import respx

from cds.demo.cohort_load import wait_for_metadata
from cds.demo.fhir_server import FhirServerError

BASE = "http://fhir.test/fhir"
CAPABILITY = {"resourceType": "CapabilityStatement", "status": "active", "fhirVersion": "4.0.1"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@respx.mock
def test_waits_through_a_starting_server_until_it_answers_with_its_capability() -> None:
    route = respx.get(f"{BASE}/metadata").mock(
        side_effect=[
            httpx.ConnectError("refused"),
            httpx.Response(503),
            httpx.Response(200, json=CAPABILITY),
        ]
    )
    clock = FakeClock()
    with httpx.Client() as client:
        wait_for_metadata(BASE + "/", client, 10, clock=clock, sleep=clock.sleep)
    assert route.call_count == 3
    assert clock.slept == [1.0, 1.0]


@respx.mock
def test_a_web_page_at_metadata_is_not_a_fhir_server() -> None:
    respx.get(f"{BASE}/metadata").mock(return_value=httpx.Response(200, text="<html>login</html>"))
    clock = FakeClock()
    with httpx.Client() as client, pytest.raises(FhirServerError) as caught:
        wait_for_metadata(BASE, client, 2.5, clock=clock, sleep=clock.sleep)
    assert str(caught.value) == (
        f"{BASE}/metadata: no FHIR server answered within 2.5 s "
        "(HTTP 200, not a CapabilityStatement)"
    )
    assert clock.now == 2.5  # gave up at the deadline, not before and not after
