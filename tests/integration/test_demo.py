"""`cto-cds demo`: FHIR server + cohort, the CDS service, an EHR client sending signed hooks, cards."""

from __future__ import annotations

import contextlib
import io
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
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
    assert "SMART app: ./scripts/demo in a terminal (or --keep) prints a URL to open it" in text


def _children(pid: int) -> set[int]:
    """The child processes of `pid` (Linux /proc): sekmet and the authorization server's node."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by a parent that is gone) is not running.
    return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _keep_running(
    env: dict[str, str], *, sigint_ignored: bool = False
) -> tuple[subprocess.Popen[str], str]:
    """`cto-cds demo --keep` started and read until it says it keeps running; `sigint_ignored`:
    started as a script's background job is (SIGINT inherited ignored)."""
    proc = subprocess.Popen(
        [str(CLI), "demo", "--patient", "pt01", "--keep"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"} | env,
        preexec_fn=_ignore_sigint if sigint_ignored else None,
    )
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
    return proc, "".join(lines)


def _kill_tree(proc: subprocess.Popen[Any]) -> None:
    """After a failure: the demo and its servers killed, so a failed test leaves no sekmet or node
    running into the next tests (a SIGKILLed demo cannot stop its children itself)."""
    if proc.poll() is None:
        for pid in _children(proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.kill()
    proc.wait()


def _stops_cleanly(proc: subprocess.Popen[str], how: signal.Signals) -> None:
    """The signal ends the demo with status 0, and no child (sekmet, node) outlives it."""
    children = _children(proc.pid)
    assert children, "sekmet (and node) run as children"
    proc.send_signal(how)
    assert proc.wait(timeout=180) == 0
    assert [pid for pid in children if _alive(pid)] == []


def test_keep_prints_an_app_url_that_launches_and_saves_and_sigterm_stops_everything() -> None:
    proc, text = _keep_running({})
    try:
        fhir = re.search(r"FHIR base: (\S+)", text)
        service = re.search(r"CDS service discovery: (\S+)", text)
        launch = re.search(r"EHR launch of pt01: open in a browser: (\S+)", text)
        assert fhir, text
        assert service, text
        assert launch, text
        assert re.search(r"SMART app, standalone launch: \S+/app/launch\?iss=", text)
        # still running after the cards: the FHIR server answers
        assert httpx.get(f"{fhir.group(1)}/metadata", timeout=10).status_code == 200
        # The printed URL: EHR launch → the authorization server → the page → Save.
        with httpx.Client(follow_redirects=True, timeout=60) as browser:
            page = browser.get(launch.group(1))
            assert page.status_code == 200, page.text
            assert "Patient pt01" in page.text
            csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text)
            assert csrf, "Save is offered: the write scopes were granted"
            saved = browser.post(
                page.url.join("save"), data={"csrf": csrf.group(1), "ostial_location": "true"}
            )
            assert saved.status_code == 200, saved.text
            assert "finding ostial_location" in saved.text
        _stops_cleanly(proc, signal.SIGTERM)
        with pytest.raises(httpx.TransportError):
            httpx.get(launch.group(1), timeout=5)
    finally:
        _kill_tree(proc)


def test_without_node_the_demo_says_why_in_one_line_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    # Started with SIGINT ignored, as `cto-cds demo --keep &` from a script is: Ctrl-C still stops
    # it (Python leaves an inherited SIG_IGN alone unless the demo installs its handler itself).
    proc, text = _keep_running({"PATH": str(tmp_path)}, sigint_ignored=True)  # no node, no npm
    try:
        why = [line for line in text.splitlines() if line.startswith("SMART app")]
        assert why == [
            "SMART app: no launch URL: node not found: install Node.js 20+ (apt-get install "
            "nodejs npm)",
            "SMART app launch: "
            + re.findall(r"(http\S+/app/launch)", text)[0]
            + " (needs an EHR; none is running)",
        ], text
        assert "pt01: Operator-CTO" in text, "the cards are printed all the same"
        _stops_cleanly(proc, signal.SIGINT)
    finally:
        _kill_tree(proc)


SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "demo"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal:
    """`./scripts/demo ARGS` with a pseudo-terminal as stdin, stdout and stderr, as a person runs it."""

    def __init__(self, *args: str) -> None:
        self.main, child = pty.openpty()
        self.proc = subprocess.Popen(
            [str(SCRIPT), "--patient", "pt01", *args],
            stdin=child,
            stdout=child,
            stderr=child,
            env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
        )
        os.close(child)
        self.seen = b""

    @property
    def text(self) -> str:
        return ANSI.sub("", self.seen.decode(errors="replace"))

    def read(self, until: str | None, timeout: float) -> str:
        """Read until `until` is printed (None: until every writer has exited) or `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (until is None or until not in self.text):
            ready, _, _ = select.select([self.main], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(self.main, 65536)
            except OSError:  # EIO: the terminal has no writer left
                break
            if not chunk:
                break
            self.seen += chunk
        return self.text

    def close(self) -> None:
        _kill_tree(self.proc)
        os.close(self.main)


def test_the_main_command_in_a_terminal_stays_up_with_the_app_url_until_ctrl_c() -> None:
    """The README's main command, as a person runs it: the cards, then the app to click through."""
    term = Terminal()
    try:
        text = term.read("press Ctrl-C", timeout=240)
        assert "pt01: Operator-CTO" in text, text
        assert "press Ctrl-C" in text, text
        assert term.proc.poll() is None, "still running after the cards"
        assert re.search(r"EHR launch of pt01: open in a browser: http\S+", text), text
        term.proc.send_signal(signal.SIGINT)
        term.read(None, timeout=180)
        assert term.proc.wait(timeout=30) == 0, term.text
    finally:
        term.close()


def test_once_in_a_terminal_ends_after_the_cards() -> None:
    term = Terminal("--once")
    try:
        text = term.read(None, timeout=240)
        assert term.proc.wait(timeout=30) == 0, text
        assert "pt01: Operator-CTO" in text
        assert "SMART app: ./scripts/demo in a terminal (or --keep) prints a URL to open it" in text
        assert "press Ctrl-C" not in text
    finally:
        term.close()
