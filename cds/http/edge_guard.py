"""The first thing every request meets: body size limit, then the client JWT, then the body.

Why an ASGI middleware and not a FastAPI dependency: FastAPI reads and parses a route's body before
its dependencies run, so a 63 MB body with no token used to be parsed in full (130 MB → 1.16 GB)
before the 401. Here the order is fixed and cheap first:

1. `Content-Length` above `CTO_CDS_MAX_BODY_BYTES` → 413, nothing read.
2. `/cds-services…` (docs/spec/cds-hooks-smart.md CH-24, CH-25): the client JWT is verified from
   the headers alone → 401 without reading a byte of the body; the jti replay check failing on the
   database → 503 (a token is never accepted unchecked). The verified client is left in the
   request state for the `Client` dependency, so the jti is remembered once.
3. The body is read here, counting bytes as they stream (chunked bodies have no Content-Length);
   past the limit → 413 and the rest is never read. The app then gets the buffered body.

Responses are OperationOutcomes (CH-23) except the 401, which carries no detail (CH-25).
"""

from __future__ import annotations

import logging

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cds.errors import AuthError
from cds.http.errors import database_unavailable, operation_outcome, unauthorized
from cds.store.engine import DATABASE_ERRORS

log = logging.getLogger("cds.http")

CLIENT_KEY = "cds_verified_client"
PROTECTED_PREFIX = "/cds-services"
_NO_BODY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class EdgeGuard:
    """ASGI middleware: size limit, client JWT, then the body (see the module docstring)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        if declared is not None:
            if not (declared.isascii() and declared.isdigit()):
                outcome = operation_outcome(400, "invalid", "Content-Length is not a number")
                await outcome(scope, receive, send)
                return
            if int(declared) > self.max_body_bytes:
                await self._refuse_size(scope, receive, send)
                return
        protected = scope["path"].startswith(PROTECTED_PREFIX) and scope["method"] != "OPTIONS"
        if protected and not await self._verify(scope, receive, send, headers):
            return
        if scope["method"] in _NO_BODY_METHODS and declared is None:
            await self.app(scope, receive, send)
            return
        body = await self._read_body(receive)
        if body is None:
            await self._refuse_size(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _verify(self, scope: Scope, receive: Receive, send: Send, headers: Headers) -> bool:
        state = scope["app"].state.cds
        request = Request(scope)
        # `aud` must be the exact external URL called (CH-25).
        audience = state.settings.public_base_url + request.url.path
        try:
            client = await state.verifier.verify(headers.get("authorization"), audience)
        except AuthError as exc:
            # The reason is for operators, never for the caller (CH-25); no token in the log.
            log.info("client JWT refused: %s (%s %s)", exc.reason, scope["method"], scope["path"])
            await unauthorized()(scope, receive, send)
            return False
        except DATABASE_ERRORS as exc:
            await database_unavailable(exc, "jti replay check", "jti")(scope, receive, send)
            return False
        scope.setdefault("state", {})[CLIENT_KEY] = client
        return True

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, or None as soon as it passes the limit (the rest is never read)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away: hand the app what came
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _refuse_size(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = operation_outcome(
            413,
            "too-costly",
            f"the request body is larger than {self.max_body_bytes} bytes (CTO_CDS_MAX_BODY_BYTES)",
        )
        response.headers["Connection"] = "close"  # do not read the rest to keep the connection
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the buffered body once, then waits on the real one (disconnects)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
