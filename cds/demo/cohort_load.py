"""`cto-cds demo load`: put the shipped synthetic cohort into any FHIR R4 server, idempotently.

For a server that is not started by us (HAPI in `deploy/compose.yaml`, a shared test server): wait
for its `/metadata`, read what it already holds of the cohort (search by `_id`), and write only the
resources that are missing or differ, through `load_cohort` (transaction Bundles, falling back to
single PUTs). A second run therefore writes nothing: no new versions, no `lastUpdated` churn.
Resources are compared without `meta` and `text`, which servers add or rewrite on their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from cds.demo.cohort_data import Resource
from cds.demo.fhir_server import FHIR_JSON, FhirServerError, load_cohort, query

ID_BATCH = 50
"""Ids per `_id` search: one page on every server (HAPI and sekmet page at 20+ only when asked less)."""
SERVER_ADDED = frozenset({"meta", "text"})


@dataclass(frozen=True)
class LoadResult:
    """What one `demo load` did: resources written (missing or different) and left as they were."""

    written: int
    unchanged: int


def wait_for_metadata(
    base_url: str,
    client: httpx.Client,
    timeout: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Poll `{base}/metadata` until it answers 200 with a CapabilityStatement, or `timeout` passes.

    Raises:
        FhirServerError: naming the URL and the last thing seen (refused, status, not FHIR).
    """
    url = f"{base_url.rstrip('/')}/metadata"
    deadline = clock() + timeout
    last = "no answer"
    while True:
        try:
            response = client.get(url, headers={"Accept": FHIR_JSON})
            if response.status_code == 200 and _is_capability(response):
                return
            last = f"HTTP {response.status_code}" + (
                ", not a CapabilityStatement" if response.status_code == 200 else ""
            )
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        if clock() >= deadline:
            raise FhirServerError(f"{url}: no FHIR server answered within {timeout:g} s ({last})")
        sleep(min(1.0, max(0.0, deadline - clock())))


def _is_capability(response: httpx.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("resourceType") == "CapabilityStatement"


def _comparable(resource: Resource) -> dict[str, Any]:
    return {key: value for key, value in resource.items() if key not in SERVER_ADDED}


def stored_versions(
    base_url: str, resources: Sequence[Resource], client: httpx.Client
) -> dict[tuple[str, str], Resource]:
    """What the server holds now of `resources`, by (type, id): searches by `_id`, `ID_BATCH` at a time."""
    base = base_url.rstrip("/")
    ids: dict[str, list[str]] = {}
    for resource in resources:
        ids.setdefault(resource["resourceType"], []).append(resource["id"])
    found: dict[tuple[str, str], Resource] = {}
    for rtype, rids in ids.items():
        for start in range(0, len(rids), ID_BATCH):
            chunk = rids[start : start + ID_BATCH]
            url = f"{base}/{rtype}?{query([('_id', ','.join(chunk)), ('_count', str(len(chunk)))])}"
            response = client.get(url, headers={"Accept": FHIR_JSON})
            if response.status_code != 200:
                raise FhirServerError(f"GET {base}/{rtype}?_id=… → HTTP {response.status_code}")
            for entry in response.json().get("entry", []):
                stored = entry.get("resource", {})
                if stored.get("resourceType") == rtype and stored.get("id") in chunk:
                    found[(rtype, stored["id"])] = stored
    return found


def load_missing(base_url: str, resources: Sequence[Resource], client: httpx.Client) -> LoadResult:
    """Write the resources the server lacks or holds differently; leave the others untouched."""
    stored = stored_versions(base_url, resources, client)
    changed = [
        r
        for r in resources
        if _comparable(stored.get((r["resourceType"], r["id"]), {})) != _comparable(r)
    ]
    if changed:
        load_cohort(base_url, changed, client)
    return LoadResult(written=len(changed), unchanged=len(resources) - len(changed))
