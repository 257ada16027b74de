"""The end-to-end stack once for tests/e2e; the browser where Debian's chromium is installed."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.stack import AUTHSERVER, Stack, running_stack

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="package")
def e2e_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if shutil.which("node") is None:
        pytest.skip("node not installed: the SMART authorization server needs Node.js")
    if not (AUTHSERVER / "node_modules" / "oidc-provider").is_dir() and not shutil.which("npm"):
        pytest.skip("npm not installed and tests/e2e/authserver/node_modules missing")
    with running_stack(tmp_path_factory.mktemp("e2e")) as stack:
        yield stack


# Module scope: sync Playwright keeps an event loop running in the main thread while it is open,
# which would break later tests that call asyncio.run().
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} missing: apt-get install -y chromium (scripts/e2e-setup)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless=new", "--no-sandbox", "--disable-gpu"]
        )
        try:
            yield chromium
        finally:
            chromium.close()
