"""Full FHIR R4B models (fhir.resources) for validating what the project writes.

fhir.resources is the optional extra `cto-cds[fhir]`: only the mapping export and the write-back
need it (the hook path reads FHIR with the lean models of `cds/sources/resources.py`), and its models
are slow to import, so they are imported here, on first use. Without the extra, the caller gets a
ConfigError naming it (one line on the CLI), never an ImportError.
"""

from __future__ import annotations

from typing import Any

from cds.errors import ConfigError

MISSING = (
    "validating FHIR resources needs the fhir.resources package: "
    "install cto-cds[fhir] (pip install 'cto-cds[fhir]')"
)


def r4b_models(*resource_types: str) -> dict[str, Any]:
    """The fhir.resources R4B model class of each resource type."""
    try:
        from fhir.resources.R4B import get_fhir_model_class
    except ImportError as exc:
        raise ConfigError(MISSING) from exc
    return {name: get_fhir_model_class(name) for name in resource_types}
