"""A SMART resource server in front of sekmet-fhir, for the demo and the end-to-end tests.

sekmet has no SMART EHR launch (docs/spec/test-servers.md §1.1), so this small ASGI app plays the
EHR's FHIR endpoint: it serves `.well-known/smart-configuration` (pointing at the oidc-provider
authorization server), verifies each request's bearer JWT against the AS's JWKS (RS256, `aud` = this
FHIR base, `iss` = the AS), enforces v2 scopes (`.r`/`.s` to read, `.c` to create) and the token's
patient on patient-scoped searches, then forwards to sekmet and rewrites sekmet's base in answers.
A transaction or batch Bundle is checked entry by entry (POST needs `c`, PUT `u`, a conditional PUT
both): one entry the token does not allow refuses the whole Bundle, as an EHR enforcing scopes would.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

FORWARDED = ("content-type", "accept", "if-none-exist", "if-match", "prefer")


def _outcome(status: int, text: str) -> JSONResponse:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "security", "diagnostics": text}],
    }
    return JSONResponse(body, status_code=status)


def _allowed(scopes: set[str], kind: str, action: str) -> bool:
    for scope in scopes:
        head, _, perms = scope.partition(".")
        where, _, what = head.partition("/")
        if where in ("patient", "user") and what in (kind, "*") and action in perms:
            return True
    return False


_ENTRY_ACTIONS = {"POST": "c", "PUT": "u", "PATCH": "u", "DELETE": "d"}


def denied_entries(scopes: set[str], bundle: object) -> list[str]:
    """`METHOD url` of each transaction/batch entry the scopes do not allow (empty: all allowed)."""
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    denied: list[str] = []
    for entry in entries if isinstance(entries, list) else []:
        request = entry.get("request") if isinstance(entry, dict) else None
        if not isinstance(request, dict):
            denied.append("an entry without request")
            continue
        method, url = str(request.get("method", "")), str(request.get("url", ""))
        kind, conditional = url.split("?", 1)[0].split("/", 1)[0], "?" in url
        if method == "GET":
            needed = "r" if "/" in url.split("?", 1)[0] else "s"
        else:
            needed = _ENTRY_ACTIONS.get(method, "?")
            needed += "c" if method == "PUT" and conditional else ""
        if not all(_allowed(scopes, kind, action) for action in needed):
            denied.append(f"{method} {url}")
    return denied


def facade(public_base: str, sekmet_base: str, auth_server: str) -> Starlette:
    """The app serving `public_base` (…/fhir) in front of `sekmet_base`."""
    jwks = jwt.PyJWKClient(auth_server + "/jwks")
    config = {
        "issuer": auth_server,
        "jwks_uri": auth_server + "/jwks",
        "authorization_endpoint": auth_server + "/auth",
        "token_endpoint": auth_server + "/token",
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
        "scopes_supported": ["openid", "fhirUser", "launch", "launch/patient", "offline_access"],
        "capabilities": [
            "launch-ehr",
            "launch-standalone",
            "client-public",
            "context-ehr-patient",
            "sso-openid-connect",
            "permission-v2",
            "permission-patient",
        ],
    }
    client = httpx.AsyncClient(timeout=30.0)

    async def smart_configuration(request: Request) -> Response:
        return JSONResponse(config)

    def claims_of(request: Request) -> dict[str, Any] | Response:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return _outcome(401, "bearer token required")
        token = header[len("Bearer ") :]
        try:
            key = jwks.get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token, key.key, algorithms=["RS256"], audience=public_base, issuer=auth_server
            )
        except jwt.PyJWTError as exc:
            return _outcome(401, f"invalid token: {type(exc).__name__}")
        return claims

    async def forward(request: Request) -> Response:
        claims = claims_of(request)
        if isinstance(claims, Response):
            return claims
        granted = set(str(claims.get("scope", "")).split())
        path = request.path_params.get("path", "")
        kind = path.split("/", 1)[0]
        action = "c" if request.method == "POST" and kind else "u"
        if request.method == "GET":
            action = "r" if "/" in path else "s"
        # The CapabilityStatement is public on a SMART server (the write path reads it).
        if kind and kind != "metadata" and not _allowed(granted, kind, action):
            return _outcome(403, f"scope does not allow {kind}.{action}")
        if request.method == "POST" and not kind:
            try:
                bundle = json.loads(await request.body())
            except ValueError:
                return _outcome(400, "body is not JSON")
            denied = denied_entries(granted, bundle)
            if denied:
                return _outcome(403, "scope does not allow " + "; ".join(denied))
        patient = claims.get("patient")
        for name in ("patient", "subject"):
            wanted = request.query_params.get(name)
            if wanted and patient and wanted.removeprefix("Patient/") != patient:
                return _outcome(403, f"{name} is not the token's patient")
        headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARDED}
        answer = await client.request(
            request.method,
            f"{sekmet_base}/{path}" if path else sekmet_base,
            params=list(request.query_params.multi_items()),
            content=await request.body(),
            headers=headers,
        )
        content = answer.content.replace(sekmet_base.encode(), public_base.encode())
        out = {k: v for k, v in answer.headers.items() if k.lower() in ("content-type", "etag")}
        if "location" in answer.headers:
            out["location"] = answer.headers["location"].replace(sekmet_base, public_base)
        return Response(content, status_code=answer.status_code, headers=out)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await client.aclose()

    prefix = "/" + public_base.split("/", 3)[3] if public_base.count("/") >= 3 else ""
    return Starlette(
        routes=[
            Route(prefix + "/.well-known/smart-configuration", smart_configuration),
            Route(prefix + "/{path:path}", forward, methods=["GET", "POST", "PUT"]),
            Route(prefix or "/", forward, methods=["POST"]),  # a transaction Bundle at the base
        ],
        lifespan=lifespan,
    )
