"""A disposable FHIR R4 server for tests and the demo, and a server-agnostic cohort loader.

`running_fhir_server` runs sekmet-fhir (docs/spec/test-servers.md §1.1, §4) from its own venv
`.venv-fhir`, so its pins (fhir.resources, FastAPI) never meet ours. Known gap of sekmet 0.1.1: it has no
Observation `focus` search parameter and ignores it (all Observations plus an OperationOutcome warning;
400 under `Prefer: handling=strict`), so `Observation?focus=Practitioner/X` is not filtered there. `load_cohort` works against any
FHIR R4 base (sekmet, HAPI): transaction Bundles of PUTs by id (a few requests instead of one per
resource), referenced resources first; a server that refuses a transaction gets plain PUTs. Queries
are fully URL-encoded.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, urlencode

import httpx

from cds.demo.children import stop_child
from cds.demo.cohort_data import TYPE_ORDER, Resource
from cds.demo.ports import free_port

SEKMET_VERSION = "0.1.1"  # keep in step with scripts/bootstrap
SEKMET_ENV = "CTO_CDS_SEKMET"
REPO_ROOT = Path(__file__).resolve().parents[2]
FHIR_JSON = "application/fhir+json"


class FhirServerError(RuntimeError):
    """The test FHIR server is missing, did not start, or rejected the cohort."""


def sekmet_executable() -> Path:
    """`$CTO_CDS_SEKMET`, else `<repo>/.venv-fhir/bin/sekmet`."""
    configured = os.environ.get(SEKMET_ENV)
    path = Path(configured) if configured else REPO_ROOT / ".venv-fhir" / "bin" / "sekmet"
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise FhirServerError(
            f"sekmet-fhir not found at {path}. Install it with scripts/bootstrap (creates .venv-fhir "
            f"with sekmet-fhir=={SEKMET_VERSION}), or: python3.11 -m venv .venv-fhir && "
            f".venv-fhir/bin/pip install sekmet-fhir=={SEKMET_VERSION}; or set {SEKMET_ENV} to the "
            "sekmet executable."
        )
    return path


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _wait_ready(proc: subprocess.Popen[bytes], base: str, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise FhirServerError(f"sekmet exited with {proc.returncode}:\n{_tail(log)}")
            try:
                if client.get(f"{base}/metadata").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    raise FhirServerError(
        f"sekmet not ready at {base}/metadata after {timeout:.0f} s:\n{_tail(log)}"
    )


@contextmanager
def running_fhir_server(workdir: Path, *, timeout: float = 30.0) -> Iterator[str]:
    """Start sekmet on a free loopback port with its SQLite store under `workdir`; yield the base URL.

    SEKMET_BASE_URL must match the port, else paging links point at its default localhost:8090
    (test-servers.md §1.1).
    """
    exe = sekmet_executable()
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    env = {**os.environ, "SEKMET_BASE_URL": base}
    log_path = workdir / "sekmet.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_ready(proc, base, timeout, log_path)
            yield base
        finally:
            stop_child(proc)


def query(params: Sequence[tuple[str, str]]) -> str:
    """A fully percent-encoded query string: HAPI's Tomcat rejects a raw `|` (test-servers §1.3)."""
    return urlencode(params, quote_via=quote, safe="")


def load_order(resources: Iterable[Resource]) -> list[Resource]:
    """Practitioners and Patients first, then what references them (stable within a type)."""
    rank = {t: i for i, t in enumerate(TYPE_ORDER)}
    return sorted(resources, key=lambda r: rank.get(r["resourceType"], len(rank)))


BUNDLE_SIZE = 250
"""Resources per transaction Bundle: few requests, each small enough for a default server limit."""
Progress = Callable[[int], None]
"""Called with the number of resources just stored."""


def _relative(resource: Resource) -> str:
    return f"{resource['resourceType']}/{quote(resource['id'], safe='')}"


def _transaction(base: str, chunk: Sequence[Resource], client: httpx.Client) -> bool:
    """PUT `chunk` as one transaction Bundle; False when the server does not take transactions.

    A server that accepts the Bundle but fails an entry is an error: the cohort must load whole.
    """
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": r, "request": {"method": "PUT", "url": _relative(r)}} for r in chunk
        ],
    }
    response = client.post(base, json=bundle, headers={"Content-Type": FHIR_JSON})
    if response.status_code in (400, 404, 405, 415, 422, 501):
        return False  # no transaction support at the base URL: fall back to single PUTs
    if response.status_code != 200:
        raise FhirServerError(
            f"POST {base} (transaction) → {response.status_code}: {response.text[:500]}"
        )
    entries = response.json().get("entry", [])
    failed = [
        e for e in entries if not str(e.get("response", {}).get("status", "")).startswith("2")
    ]
    if len(entries) != len(chunk) or failed:
        raise FhirServerError(
            f"POST {base} (transaction): {len(failed)} of {len(chunk)} entries failed: "
            f"{str(failed[:1])[:500]}"
        )
    return True


def _put(base: str, resource: Resource, client: httpx.Client) -> None:
    url = f"{base}/{_relative(resource)}"
    response = client.put(url, json=resource, headers={"Content-Type": FHIR_JSON})
    if response.status_code not in (200, 201):
        raise FhirServerError(f"PUT {url} → {response.status_code}: {response.text[:500]}")


def load_cohort(
    base_url: str,
    resources: Sequence[Resource],
    client: httpx.Client,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Store every resource by id (update-as-create), then check each type's count on the server.

    Transaction Bundles of `BUNDLE_SIZE` PUTs; if the server refuses the first, one PUT per
    resource. `progress` is told how many resources each step stored. Returns the number of
    resources per type. Counting by `_id` keeps the check valid on a shared server that holds
    other data too.
    """
    base = base_url.rstrip("/")
    ordered = load_order(resources)
    batches = True
    for start in range(0, len(ordered), BUNDLE_SIZE):
        chunk = ordered[start : start + BUNDLE_SIZE]
        batches = batches and _transaction(base, chunk, client)
        if batches:
            if progress:
                progress(len(chunk))
            continue
        for resource in chunk:
            _put(base, resource, client)
            if progress:
                progress(1)
    expected = Counter(r["resourceType"] for r in resources)
    ids: dict[str, list[str]] = {}
    for r in resources:
        ids.setdefault(r["resourceType"], []).append(r["id"])
    for rtype, rids in ids.items():
        found = 0
        for start in range(0, len(rids), 50):
            q = query([("_id", ",".join(rids[start : start + 50])), ("_summary", "count")])
            response = client.get(f"{base}/{rtype}?{q}", headers={"Accept": FHIR_JSON})
            response.raise_for_status()
            found += int(response.json().get("total", 0))
        if found != expected[rtype]:
            raise FhirServerError(
                f"{rtype}: loaded {expected[rtype]} but the server finds {found} by _id"
            )
    return dict(expected)
