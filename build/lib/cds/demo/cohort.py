"""Deterministic synthetic CTO-PCI cohort: FHIR R4 resources plus the inputs a clinician reads.

    .venv/bin/python -m cds.demo.cohort --out cds/demo

writes `cohort.ndjson` (one resource per line, fixed ids, referenced resources first) and
`cohort_expected.json` (per index patient: order, operator, index date, every canonical input of
inputs.md with its expected value, null = unknown, and a one-line reason). No clock, no randomness:
the output depends only on this package's source (tests/unit/test_cohort.py checks the shipped files).
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cds.demo import cohort_patients_a, cohort_patients_b, cohort_patients_c, cohort_patients_d
from cds.demo.case import FinishedCase
from cds.demo.cohort_operators import OPERATORS, operator_expected, operator_resources
from cds.demo.fhir_build import Resource, npi

NDJSON = "cohort.ndjson"
_ONE_INPUT = re.compile(r'\{\n\s+"value": (.*),\n\s+"reason": (".*")\n\s+\}')
EXPECTED_JSON = "cohort_expected.json"

# Referenced before referencing: servers such as HAPI reject dangling references (test-servers §1.3).
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


@dataclass(frozen=True)
class Cohort:
    resources: tuple[Resource, ...]
    cases: tuple[FinishedCase, ...]


def build_cohort() -> Cohort:
    cases: list[FinishedCase] = []
    for module in (cohort_patients_a, cohort_patients_b, cohort_patients_c, cohort_patients_d):
        for make in module.CASES:
            case = make()
            cases.append(case.finish(operator_expected(case.operator, case.index_date)))
    resources = [*operator_resources()]
    for case in cases:
        resources.extend(case.resources)
    resources.sort(key=lambda r: TYPE_ORDER.index(r["resourceType"]))  # stable
    return Cohort(tuple(resources), tuple(cases))


def render_ndjson(cohort: Cohort) -> str:
    return "".join(
        json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in cohort.resources
    )


def render_expected(cohort: Cohort) -> str:
    doc: dict[str, Any] = {
        "about": (
            "Expected canonical inputs (shared/spec/inputs.md) as a clinician reads each index "
            "patient's record in cohort.ndjson; value null = unknown. "
            "Regenerate: .venv/bin/python -m cds.demo.cohort --out cds/demo"
        ),
        "operators": {o.pid: {"npi": npi(o.npi9), "design": o.role} for o in OPERATORS},
        "patients": [
            {
                "patient": case.pid,
                "title": case.title,
                "order": case.order_id,
                "operator": case.operator,
                "index_date": case.index_date,
                "inputs": {
                    name: {"value": value, "reason": reason}
                    for name, (value, reason) in case.expected.items()
                },
            }
            for case in cohort.cases
        ],
    }
    text = json.dumps(doc, ensure_ascii=False, indent=2)
    # One line per input: the file is read by people comparing a patient's inputs at a glance.
    return _ONE_INPUT.sub(r'{"value": \1, "reason": \2}', text) + "\n"


def write_cohort(out: Path) -> list[Path]:
    cohort = build_cohort()
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in ((NDJSON, render_ndjson(cohort)), (EXPECTED_JSON, render_expected(cohort))):
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def load_ndjson(path: Path) -> list[Resource]:
    """The shipped cohort as resources (for loading into a server without regenerating)."""
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cds.demo.cohort", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="directory for the two files")
    args = parser.parse_args(argv)
    for path in write_cohort(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
