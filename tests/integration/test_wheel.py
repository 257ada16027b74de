"""The built wheel works on its own: installed into a fresh venv outside the checkout, with only its
base dependencies (no extras) pinned by constraints.txt, from a working directory outside the checkout.

What this catches: package data missing from the wheel (the demo cohort, the default mapping tables
and hook definitions under cds/defaults/, the Alembic migrations), a dependency used but not declared,
and code that finds files relative to the checkout instead of through importlib.resources.

One build and one install per session (module-scoped fixture, a minute or so on a warm pip cache);
the three checks then run the installed `cto-cds` command.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from cds.demo.ehr import EhrKeys, sign_client_jwt
from cds.mapping.tables import DEFAULT_DIR, load_tables

REPO = Path(__file__).resolve().parents[2]
ISS = "https://ehr.example.org"


@dataclass(frozen=True)
class Installed:
    venv: Path
    workdir: Path
    env: dict[str, str]

    @property
    def cto_cds(self) -> str:
        return str(self.venv / "bin" / "cto-cds")

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.cto_cds, *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def package_path(self, *parts: str) -> Path:
        """A path inside the installed `cds` package, as importlib.resources gives it."""
        code = "import importlib.resources as r, sys; print(r.files('cds').joinpath(*sys.argv[1:]))"
        done = subprocess.run(
            [str(self.venv / "bin" / "python"), "-c", code, *parts],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return Path(done.stdout.strip())


def _checked(command: list[str], cwd: Path) -> None:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, (
        f"{' '.join(command)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    dist, venv, workdir = root / "dist", root / "venv", root / "work"
    workdir.mkdir()
    # pip wheel builds in an isolated environment (setuptools from PyPI or pip's cache).
    _checked(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(dist), str(REPO)],
        cwd=root,
    )
    wheels = list(dist.glob("cto_cds-*.whl"))
    assert len(wheels) == 1, wheels
    _checked([sys.executable, "-m", "venv", str(venv)], cwd=root)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    _checked([*pip, "-c", str(REPO / "constraints.txt"), str(wheels[0])], cwd=root)
    # Nothing from the checkout or this test run's environment leaks in (PYTHONPATH, CTO_CDS_*).
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CTO_CDS_", "PYTHON", "VIRTUAL_ENV"))
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    result = Installed(venv=venv, workdir=workdir, env=env)
    package = result.package_path()
    assert package.is_relative_to(venv), package  # the installed copy, not the checkout
    return result


def test_installed_package_has_every_file_of_the_source_package(installed: Installed) -> None:
    """Package data (pyproject.toml `package-data` globs) covers every file under cds/."""

    def files(root: Path) -> set[str]:
        return {
            path.relative_to(root).as_posix()
            for path in root.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts
        }

    source = files(REPO / "cds")
    assert "store/migrations/env.py" in source
    assert source - files(installed.package_path()) == set()


def test_installed_wheel_scores_the_shipped_cohort(installed: Installed) -> None:
    cohort = installed.package_path("demo", "cohort.ndjson")
    assert cohort.is_file()
    done = installed.run("score", "--bundle", str(cohort), "--patient", "pt04", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert {"operator_cto", "j_cto", "progress_cto"} <= result["scores"].keys()
    assert result["inputs"]["age_years"]["value"] == 74
    # Same answer as the checkout: the installed defaults (mapping tables) are the shipped ones.
    source = subprocess.run(
        [
            sys.executable,
            "-m",
            "cds",
            "score",
            "--bundle",
            str(cohort),
            "--patient",
            "pt04",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result == json.loads(source.stdout)


def test_installed_wheel_checks_the_default_mappings(installed: Installed) -> None:
    # `mappings check` takes the site directory as an argument: give it the installed defaults.
    defaults = installed.package_path("defaults", "mappings")
    assert (defaults / "codes.csv").is_file()
    done = installed.run("mappings", "check", str(defaults))
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    summary, version = done.stdout.splitlines()
    assert summary.endswith("operators, rules OK")
    assert int(summary.split()[0]) > 0  # "<n> rows (...)"
    # The same files read from the checkout give the same version: paths do not count.
    assert version == f"version {load_tables(DEFAULT_DIR, DEFAULT_DIR).version}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def served(installed: Installed, tmp_path: Path) -> Iterator[tuple[str, EhrKeys]]:
    keys = EhrKeys.generate("ES384", kid="wheel-test")
    trusted = tmp_path / "trusted-clients.json"
    trusted.write_text(json.dumps([{"iss": ISS, "jwks": keys.jwks()}]))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **installed.env,
        "CTO_CDS_TRUSTED_CLIENTS": str(trusted),
        "CTO_CDS_PUBLIC_BASE_URL": base,
        "CTO_CDS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cto-cds.db'}",
    }
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [installed.cto_cds, "serve", "--port", str(port)],
            cwd=installed.workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, log.read_text()
            try:
                httpx.get(f"{base}/cds-services", timeout=1)  # any answer: it is up
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        yield base, keys
        # The service migrated its database at start-up from the packaged Alembic revisions.
        with sqlite3.connect(tmp_path / "cto-cds.db") as db:
            assert db.execute("SELECT version_num FROM alembic_version").fetchall()
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_installed_wheel_serves_discovery(served: tuple[str, EhrKeys]) -> None:
    base, keys = served
    url = f"{base}/cds-services"
    token = sign_client_jwt(keys, ISS, url)
    response = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 200, response.text
    services = response.json()["services"]
    assert {(s["id"], s["hook"]) for s in services} == {
        ("operator-cto", "order-select"),
        ("operator-cto", "order-sign"),
    }
    unsigned = httpx.get(url, timeout=10)
    assert unsigned.status_code == 401
