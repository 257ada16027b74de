"""An EHR-like client for the service tests: real keys, signed JWTs, hook bodies from the cohort."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from fastapi.testclient import TestClient

from cds.auth.trust import TrustedClient
from cds.demo.ehr import EhrKeys, hook_request, sign_client_jwt
from cds.main import create_app
from cds.settings import Settings
from cds.sources.searches import patient_searches

BASE = "http://testserver"
ISS = "https://ehr.example.org"
ES384 = EhrKeys.generate("ES384", kid="ehr-es384")
RS384 = EhrKeys.generate("RS384", kid="ehr-rs384")
TRUSTED = [
    TrustedClient(iss=ISS, jwks={"keys": [ES384.jwks()["keys"][0], RS384.jwks()["keys"][0]]})
]


def token(path: str, keys: EhrKeys = ES384, **kw: Any) -> str:
    return sign_client_jwt(keys, ISS, BASE + path, **kw)


def auth(path: str, keys: EhrKeys = ES384, **kw: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(path, keys, **kw)}"}


def settings(tmp: Path, fhir_base: str | None, **extra: Any) -> Settings:
    extra.setdefault("database_url", f"sqlite+aiosqlite:///{tmp / 'service.db'}")
    return Settings(
        public_base_url=BASE,
        allowed_fhir_servers=[fhir_base] if fhir_base else [],
        **extra,
    )


@contextmanager
def service(tmp: Path, fhir_base: str | None, **extra: Any) -> Iterator[TestClient]:
    app = create_app(settings(tmp, fhir_base, **extra), trusted=TRUSTED)
    with TestClient(app, base_url=BASE) as client:
        yield client


def hook_body(
    hook: Literal["order-select", "order-sign"],
    patient: str,
    cohort: list[dict[str, Any]],
    *,
    fhir_server: str | None,
    prefetch: dict[str, Any] | None = None,
    order: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A hook call for a cohort patient's CTO-PCI order (the demo's builder, `hook_request`)."""
    order = order or next(
        r
        for r in cohort
        if r["resourceType"] == "ServiceRequest"
        and r["subject"]["reference"] == f"Patient/{patient}"
    )
    return hook_request(
        hook, order=order, patient_id=patient, fhir_server=fhir_server, prefetch=prefetch
    )


def full_prefetch(patient: str, cohort: list[dict[str, Any]]) -> dict[str, Any]:
    """What an EHR honouring every template would send: reads and searchset Bundles."""
    out: dict[str, Any] = {}
    for search in patient_searches(patient):
        if "?" not in search.path:
            out[search.key] = next(
                r for r in cohort if f"{r['resourceType']}/{r['id']}" == search.path
            )
            continue
        matches = [
            r
            for r in cohort
            if r["resourceType"] == search.resource_type
            and (r.get("subject") or {}).get("reference") == f"Patient/{patient}"
        ]
        out[search.key] = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(matches),
            "entry": [{"resource": r, "search": {"mode": "match"}} for r in matches],
        }
    return out
