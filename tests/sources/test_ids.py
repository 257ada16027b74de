"""FHIR ids that become request paths (`Patient/{id}`): FHIR's rule, less the dot-only segments."""

from __future__ import annotations

import re

import pytest

from cds.sources.searches import patient_searches, valid_id


@pytest.mark.parametrize("value", ["pt01", "a.b", "A-1", ".hidden", "x" * 64, "1.2.840"])
def test_fhir_ids(value: str) -> None:
    assert valid_id(value)


@pytest.mark.parametrize("value", [".", "..", "...", "", "a/b", "x" * 65, "a b", "é"])
def test_not_ids(value: str) -> None:
    # `..` passed FHIR's pattern and `Patient/..` read the server's base (httpx collapses it).
    assert not valid_id(value)


def test_a_dot_only_patient_id_builds_no_search() -> None:
    with pytest.raises(ValueError, match=re.escape("patient id '..' is not a FHIR id")):
        patient_searches("..")
