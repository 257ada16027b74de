"""The pod's `readOnlyRootFilesystem` (deploy/k8s/deployment.yaml, migrate-job.yaml), tried for
real: the migration Job's command and `cto-cds serve` on PostgreSQL, with the whole root file
system read-only (a private mount namespace: the machine's own stays writable) — start-up, probes,
a scored hook call with its audit row, feedback. Nothing may need to write a file (deploy/README.md);
here not even /tmp is writable, which the pods mount as an emptyDir."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from cds.demo.ehr import EhrKeys, sign_client_jwt
from tests.integration.conftest import PG_ENV
from tests.integration.serve_process import ISS, cto_cds, serve_env, serving, trust_file
from tests.integration.service_harness import full_prefetch, hook_body

pytestmark = pytest.mark.integration

# Root bind-mounted onto itself read-only, in a mount namespace of the command's own.
READ_ONLY_ROOT = [
    "unshare",
    "--mount",
    "sh",
    "-c",
    'mount --make-rprivate / && mount --bind / / && mount -o remount,ro,bind / && exec "$@"',
    "read-only-root",
]
PUBLIC = "http://127.0.0.1:8000"
SERVICE = "/cds-services/operator-cto"


def test_the_job_and_the_service_run_on_a_read_only_root(
    tmp_path: Path, database_urls: dict[str, str], cohort_resources: list[dict[str, Any]]
) -> None:
    url = database_urls.get("postgresql")
    if url is None:
        pytest.skip(f"the pods run on PostgreSQL: set {PG_ENV} (.ci/run sets it)")
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("a mount namespace needs root and unshare (.ci/run runs as root)")
    probe = tmp_path / "written"
    refused = subprocess.run([*READ_ONLY_ROOT, "touch", str(probe)], capture_output=True, text=True)
    assert refused.returncode != 0, "the root was not read-only"
    assert "Read-only file system" in refused.stderr
    assert not probe.exists()

    keys = EhrKeys.generate("ES384", kid="read-only")
    env = serve_env(
        public_base_url=PUBLIC,
        trusted_clients=str(trust_file(tmp_path, keys)),
        database_url=url,
        migrate_on_start="false",
        metrics_token="metrics-token-0123456789",
    )
    job = subprocess.run(
        [*READ_ONLY_ROOT, *cto_cds(), "db", "upgrade"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert job.returncode == 0, job.stderr

    prefetch = full_prefetch("pt05", cohort_resources)
    body = hook_body("order-select", "pt05", cohort_resources, fhir_server=None, prefetch=prefetch)
    log = tmp_path / "serve.log"
    with (
        serving(env, tmp_path, log, wrapper=READ_ONLY_ROOT) as address,
        httpx.Client(base_url=address, timeout=60) as ehr,
    ):

        def signed(path: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {sign_client_jwt(keys, ISS, PUBLIC + path)}"}

        answered = ehr.post(SERVICE, json=body, headers=signed(SERVICE))
        assert answered.status_code == 200, answered.text
        (card,) = answered.json()["cards"]
        item = {
            "card": card["uuid"],
            "outcome": "overridden",
            "overrideReason": {"userComment": "read-only root"},
            "outcomeTimestamp": "2026-12-07T12:00:00Z",
        }
        feedback = ehr.post(
            SERVICE + "/feedback",
            json={"feedback": [item]},
            headers=signed(SERVICE + "/feedback"),
        )
        ready = ehr.get("/readyz")
        metrics = ehr.get("/metrics", headers={"Authorization": "Bearer metrics-token-0123456789"})
    assert card["summary"].startswith("Operator-CTO")
    assert feedback.status_code == 200, feedback.text
    assert ready.json()["audit_failures"] == 0  # the card's row was written
    assert metrics.status_code == 200
    assert "Read-only file system" not in log.read_text()
