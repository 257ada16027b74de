"""`cto-cds demo`: starts its own FHIR server, loads the cohort and prints a summary per patient."""

from __future__ import annotations

import io

from rich.console import Console

from cds.demo.run import run_demo


def test_demo_prints_a_summary_per_patient() -> None:
    out = io.StringIO()
    assert run_demo(("pt04", "pt23"), Console(file=out, width=140)) == 0
    text = out.getvalue()
    assert "loaded 1837 resources" in text
    assert "pt04: ServiceRequest/pt04-order, Practitioner/op-threshold" in text
    # pt23: lesion 7 with an operator from override Observations (−4) → 3, moderate (Xiao Table 2).
    assert "Operator-CTO 3 — moderate: est. 87.5%" in text
    assert "J-CTO" in text
    assert "single-centre" in text
