"""`cto-cds demo`: FHIR server + cohort, the CDS service, an EHR client sending signed hooks, cards."""

from __future__ import annotations

import io

from rich.console import Console

from cds.demo.run import run_demo


def test_demo_sends_hooks_and_prints_cards() -> None:
    out = io.StringIO()
    assert run_demo(("pt04", "pt23"), Console(file=out, width=160)) == 0
    text = out.getvalue()
    assert "loaded 1837 resources" in text
    assert "discovered operator-cto (order-select), operator-cto (order-sign)" in text
    # pt23: lesion 7 with an operator from override Observations (−4) → 3, moderate (Xiao 2021 Table 6).
    assert "pt23: Operator-CTO 3 — moderate" in text
    assert "pt04: Operator-CTO 0 to 3 (easy or moderate)" in text
    assert "single-centre" in text
    assert "feedback on the first card: HTTP 200" in text
