"""`cto-cds demo`: FHIR server + cohort, the CDS service, an EHR client sending signed hooks, cards."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from rich.console import Console

from cds.demo.run import run_demo

CLI = Path(sys.executable).parent / "cto-cds"


def test_demo_sends_hooks_and_prints_whole_cards() -> None:
    out = io.StringIO()
    assert run_demo(("pt04", "pt15", "pt23"), Console(file=out, width=160)) == 0
    text = out.getvalue()
    assert "loaded 1837 resources" in text
    assert "discovered operator-cto (order-select), operator-cto (order-sign)" in text
    # pt23: lesion 7 with an operator from override Observations (−4) → 3, moderate (Xiao 2021 Table 6).
    assert "pt23: Operator-CTO 3 — moderate" in text
    assert "pt04: Operator-CTO 0 to 3 (easy or moderate)" in text
    assert "Target: LAD CTO" in text
    # pt15: difficult or worse is certain, so the referral suggestion is shown with the card
    assert "pt15: Operator-CTO 4 to 8 (difficult or extremely difficult)" in text
    assert "Suggestion: Consider referral to a high-volume CTO operator" in text
    assert "Link (smart): Review inputs and complete findings" in text
    assert "Override reasons: Angiographic findings incorrect or incomplete" in text
    assert "single-centre" in text
    assert "feedback on the first card: HTTP 200" in text


def test_keep_leaves_the_stack_running_until_ctrl_c() -> None:
    proc = subprocess.Popen(
        [str(CLI), "demo", "--patient", "pt01", "--keep"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "press Ctrl-C" in line:
                break
        text = "".join(lines)
        fhir = re.search(r"FHIR base: (\S+)", text)
        service = re.search(r"CDS service discovery: (\S+)", text)
        assert fhir, text
        assert service, text
        assert "SMART app: " in text
        # still running after the cards: the FHIR server answers
        assert httpx.get(f"{fhir.group(1)}/metadata", timeout=10).status_code == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=180) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
