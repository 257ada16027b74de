"""cds.mapping.export without the optional `fhir` extra: a clear ConfigError, not an ImportError."""

from __future__ import annotations

import sys

import pytest

from cds.errors import ConfigError
from cds.mapping.export import concept_map, validate
from cds.mapping.tables import load_tables

FHIR_MODULES = [
    "fhir",
    "fhir.resources",
    "fhir.resources.R4B",
    "fhir.resources.R4B.codesystem",
    "fhir.resources.R4B.conceptmap",
    "fhir.resources.R4B.valueset",
]


def hide_fhir_resources(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `import fhir.resources…` fail as if the extra were not installed (None in sys.modules)."""
    for name in FHIR_MODULES:
        monkeypatch.setitem(sys.modules, name, None)


def test_validate_accepts_the_concept_map() -> None:
    validate(concept_map(load_tables()))


def test_validate_without_fhir_resources_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    hide_fhir_resources(monkeypatch)
    with pytest.raises(ConfigError, match=r"install cto-cds\[fhir\]"):
        validate(concept_map(load_tables()))
