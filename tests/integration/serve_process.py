"""`cto-cds serve` as a real process: its own port, settings from the environment, and every byte
it writes to stdout and stderr kept in a file (the PHI scan reads it; replicas share a database)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from cds.demo.ehr import EhrKeys
from cds.demo.ports import free_port

ISS = "https://ehr.replica-test.example.org"


def cto_cds() -> list[str]:
    exe = shutil.which("cto-cds", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "cds"]


def trust_file(directory: Path, keys: EhrKeys) -> Path:
    path = directory / "trusted-clients.json"
    path.write_text(json.dumps([{"iss": ISS, "jwks": keys.jwks()}]))
    return path


def serve_env(**settings: str) -> dict[str, str]:
    """This environment without any CTO_CDS_* of the caller's, plus `settings` (NAME=value)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTO_CDS_")}
    env.update({f"CTO_CDS_{name.upper()}": value for name, value in settings.items()})
    return env


@contextmanager
def serving(
    env: dict[str, str],
    workdir: Path,
    log: Path,
    options: Sequence[str] = (),
    wrapper: Sequence[str] = (),
) -> Iterator[str]:
    """`cto-cds serve [options]` on a free port until the block ends, run by `wrapper` if given;
    yields its address (not necessarily CTO_CDS_PUBLIC_BASE_URL: replicas behind one balancer
    share that)."""
    with served(env, workdir, log, options, wrapper) as (address, _):
        yield address


@contextmanager
def served(
    env: dict[str, str],
    workdir: Path,
    log: Path,
    options: Sequence[str] = (),
    wrapper: Sequence[str] = (),
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`serving`, yielding the process too: for a test that signals it."""
    port = free_port()
    address = f"http://127.0.0.1:{port}"
    with log.open("w") as out:
        process = subprocess.Popen(
            [*wrapper, *cto_cds(), "serve", "--port", str(port), *options],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=out,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{address}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield address, process
    finally:
        process.terminate()
        process.wait(timeout=30)


def start_fails(env: dict[str, str], workdir: Path) -> subprocess.CompletedProcess[str]:
    """`cto-cds serve` expected to stop at start-up (its one line and exit code)."""
    return subprocess.run(
        [*cto_cds(), "serve", "--port", str(free_port())],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def lines(log: Path) -> Sequence[str]:
    return [line for line in log.read_text("utf-8").splitlines() if line.strip()]
