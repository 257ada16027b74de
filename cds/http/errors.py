"""Errors → HTTP: an OperationOutcome for every non-2xx body (CH-23), 401 with no detail (CH-25).

A database that cannot be reached is a 503 with `Retry-After`, so the EHR retries, and one log line
naming the exception class only: SQLAlchemy messages can carry SQL and, without the engine's
`hide_parameters`, bound values (patient ids).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from cds import metrics
from cds.errors import AuthError, ContextError, DataUnavailableError, InputError
from cds.logs import exception_fields
from cds.store.engine import DATABASE_ERRORS

log = logging.getLogger("cds.http")

FHIR_JSON = "application/fhir+json"
RETRY_AFTER_SECONDS = 5


def operation_outcome(
    status: int, code: str, diagnostics: str, expression: str | None = None
) -> JSONResponse:
    issue: dict[str, object] = {"severity": "error", "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = [expression]
    return JSONResponse(
        {"resourceType": "OperationOutcome", "issue": [issue]},
        status_code=status,
        media_type=FHIR_JSON,
    )


def not_json(content_type: str | None) -> str:
    """Why a body was not read (hook calls and feedback alike): the header and its value."""
    given = f"Content-Type is {content_type[:100]!r}" if content_type else "no Content-Type header"
    return f"the body is not read as JSON: {given}; send Content-Type: application/json"


def unauthorized() -> Response:
    return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})


def database_unavailable(exc: BaseException, during: str, kind: str = "request") -> JSONResponse:
    """503 + Retry-After; logs one line with the exception class only (never its text: PHI) and
    counts it under `kind` (`cto_cds_database_errors{during}`)."""
    metrics.DATABASE_ERRORS.labels(kind).inc()
    log.error("database unavailable during %s: %s", during, type(exc).__name__)
    response = operation_outcome(503, "transient", "the service's database is unavailable; retry")
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def install(app: FastAPI) -> None:
    @app.exception_handler(AuthError)
    async def _auth(request: Request, exc: AuthError) -> Response:
        # The reason is for operators, never for the caller (CH-25); no token in the log.
        log.info("client JWT refused: %s (%s %s)", exc.reason, request.method, request.url.path)
        return unauthorized()

    for kind in DATABASE_ERRORS:

        @app.exception_handler(kind)
        async def _database(request: Request, exc: Exception) -> Response:
            return database_unavailable(exc, f"{request.method} {request.url.path}")

    @app.exception_handler(RecursionError)
    async def _too_deep(request: Request, exc: RecursionError) -> Response:
        return operation_outcome(400, "invalid", "the request is nested too deeply")

    @app.exception_handler(ContextError)
    async def _context(request: Request, exc: ContextError) -> Response:
        return operation_outcome(400, "invalid", exc.msg, exc.loc)

    @app.exception_handler(InputError)
    async def _input(request: Request, exc: InputError) -> Response:
        return operation_outcome(400, "invalid", str(exc))

    @app.exception_handler(DataUnavailableError)
    async def _unavailable(request: Request, exc: DataUnavailableError) -> Response:
        return operation_outcome(412, "not-found", exc.why, exc.what)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        if tuple(first.get("loc", ())) == ("body",) and isinstance(first.get("input"), bytes):
            # A body FastAPI left as bytes: its Content-Type is not JSON (or there is none).
            return operation_outcome(400, "invalid", not_json(request.headers.get("content-type")))
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return operation_outcome(400, "invalid", str(first.get("msg")), where or None)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        code = {404: "not-found", 405: "not-supported", 413: "too-costly"}.get(
            exc.status_code, "processing"
        )
        return operation_outcome(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # Class and frames only, never the message or locals (any formatter): see cds/logs.py.
        log.error(
            "unexpected error on %s %s: %s",
            request.method,
            request.url.path,
            type(exc).__name__,
            extra={"fields": exception_fields(exc)},
        )
        return operation_outcome(500, "exception", "internal error")
