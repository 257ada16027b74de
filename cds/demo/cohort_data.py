"""The shipped synthetic cohort (data only): where it is, the order to load it in, how to read it.

The generator that writes `cohort.ndjson` and `cohort_expected.json` is test fixture code
(`tests/fixtures/cohort.py`); `cto-cds demo` needs only the files.
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

Resource = dict[str, Any]

COHORT_NDJSON = Path(str(files(__package__ or "cds.demo") / "cohort.ndjson"))
COHORT_EXPECTED = Path(str(files(__package__ or "cds.demo") / "cohort_expected.json"))

# Referenced before referencing: servers such as HAPI reject dangling references.
TYPE_ORDER = (
    "Practitioner",
    "Patient",
    "Encounter",
    "Condition",
    "Procedure",
    "Observation",
    "DiagnosticReport",
    "ServiceRequest",
)


def load_ndjson(path: Path = COHORT_NDJSON) -> list[Resource]:
    """The shipped cohort as resources (for loading into a server without regenerating)."""
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
