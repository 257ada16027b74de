"""The container healthchecks, run for real: the Dockerfile's and compose's probe commands against a
running cto-cds service, and the HAPI check (deploy/hapi/FhirReady.java) against the suite's FHIR
server. Only the address is swapped: no container runs here (no Docker engine)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest
import yaml

from cds.demo.ports import free_port
from cds.demo.run import running_service
from cds.settings import Settings
from tests.deploy.support import DEPLOY, ROOT
from tests.deploy.test_dockerfile import FINAL

IMAGE_ADDRESS = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("cds") / "cds.db"
    settings = Settings(
        public_base_url=f"http://127.0.0.1:{free_port()}", database_url=f"sqlite+aiosqlite:///{db}"
    )
    with running_service(settings, []) as base:
        yield base


def _probe(argv: list[str], address: str) -> subprocess.CompletedProcess[str]:
    # The image's `python` is this interpreter; the address is the running service's.
    argv = [sys.executable if a == "python" else a.replace(IMAGE_ADDRESS, address) for a in argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def _dockerfile_check() -> list[str]:
    (check,) = [i.args for i in FINAL if i.keyword == "HEALTHCHECK"]
    argv: list[str] = json.loads(check.partition("CMD ")[2])
    return argv


def _compose_check(name: str) -> list[str]:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text("utf-8"))
    argv: list[str] = compose["services"][name]["healthcheck"]["test"][1:]
    return argv


@pytest.mark.parametrize(
    "argv", [_dockerfile_check(), _compose_check("cds")], ids=["image", "compose"]
)
def test_the_service_healthcheck_passes_on_a_running_service_and_fails_without_one(
    service: str, argv: list[str]
) -> None:
    assert IMAGE_ADDRESS in argv[-1]
    assert _probe(argv, service).returncode == 0
    down = _probe(argv, f"http://127.0.0.1:{free_port()}")
    assert down.returncode == 1
    assert "URLError" in down.stderr or "Connection refused" in down.stderr


def _hapi_check() -> list[str]:
    """Compose's HAPI healthcheck with the mounted file at its place in the repository."""
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text("utf-8"))
    fhir = compose["services"]["fhir"]
    mounts = {v.split(":")[1]: str(DEPLOY / v.split(":")[0]) for v in fhir["volumes"]}
    return [mounts.get(a, a) for a in fhir["healthcheck"]["test"][1:-1]]


@pytest.mark.skipif(shutil.which("java") is None, reason="needs a Java runtime (HAPI's check)")
def test_the_hapi_check_passes_on_a_fhir_server_and_fails_elsewhere(
    fhir_base: str, service: str
) -> None:
    argv = _hapi_check()
    assert argv[0] == "java"

    def check(url: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*argv, url], capture_output=True, text=True, timeout=120, check=False, cwd=ROOT
        )

    ready = check(f"{fhir_base}/metadata")
    assert ready.returncode == 0, ready.stdout + ready.stderr
    assert ready.stdout.strip() == f"{fhir_base}/metadata: HTTP 200 ready"
    # Answers, but not with a CapabilityStatement: the CDS service's /healthz.
    other = check(f"{service}/healthz")
    assert other.returncode == 1
    assert other.stdout.strip() == f"{service}/healthz: HTTP 200 not ready"
    refused = check(f"http://127.0.0.1:{free_port()}/fhir/metadata")
    assert refused.returncode == 1
    assert "ConnectException" in refused.stdout
