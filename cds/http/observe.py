"""What the service tells its operators: request metrics (ASGI middleware), one log line per hook
call, and `/metrics` behind its own bearer token (docs/operations.md).

Nothing here sees a body: the middleware reads the method, the route template and the status; the
hook line carries `hookInstance` (the EHR's random UUID for the call), the hook, the outcome, the
duration and the band, never a patient, an order or a token.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
from types import TracebackType
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cds import metrics
from cds.http.deps import State
from cds.http.errors import unauthorized
from cds.scored_case import ScoredCase
from cds.scoring.scores.operator_cto import OPERATOR_CTO

log = logging.getLogger("cds.hook")

UNMATCHED = "unmatched"
"""The route label of a path no route serves (labels never carry a raw path: unbounded, and a path
may hold an identifier)."""


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Method labels; any other token a client sends is `other` (labels stay a bounded set)."""

# The routes EdgeGuard may answer before routing (401, 503 on the jti check, 413).
_GUARDED = (
    (re.compile(r"/cds-services/?"), "/cds-services"),
    (re.compile(r"/cds-services/[^/]+"), "/cds-services/{service_id}"),
    (re.compile(r"/cds-services/[^/]+/feedback"), "/cds-services/{service_id}/feedback"),
)


def route_label(scope: Scope) -> str:
    """The template of the route that served this request, e.g. `/cds-services/{service_id}`;
    for a request refused before routing, the CDS Hooks route it was for, else `unmatched`."""
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    for pattern, label in _GUARDED:
        if pattern.fullmatch(scope["path"]):
            return label
    return UNMATCHED


class Observe:
    """ASGI middleware, outermost: counts every response by route, method and status, and times it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the app raises before answering

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            route = route_label(scope)
            method = scope["method"] if scope["method"] in _METHODS else "other"
            metrics.HTTP_REQUESTS.labels(route, method, str(status)).inc()
            metrics.HTTP_DURATION.labels(route, method).observe(time.perf_counter() - started)


def band_of(case: ScoredCase) -> str:
    """The card's Operator-CTO band, or `undetermined` when unknown inputs leave several."""
    result = case.report.scores.get(OPERATOR_CTO.id)
    band = result.band if result is not None else None
    return band or "undetermined"


class HookCall:
    """One hook call observed: `with HookCall(hook, instance) as call:`, set `call.band` when a card
    is built; on exit the metrics are counted and one log line is written (an exception: `error`,
    with its class name only, and it propagates)."""

    def __init__(self, hook: str, hook_instance: str) -> None:
        self.hook = hook
        self.hook_instance = hook_instance
        self.cards = 0
        self.band: str | None = None
        self._started = 0.0

    def __enter__(self) -> HookCall:
        self._started = time.perf_counter()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        seconds = time.perf_counter() - self._started
        outcome = "error" if kind is not None else ("card" if self.cards else "no_card")
        metrics.HOOK_CALLS.labels(self.hook, outcome).inc()
        metrics.HOOK_DURATION.labels(self.hook, outcome).observe(seconds)
        if outcome == "card":
            metrics.CARDS.labels(self.band or "undetermined").inc(self.cards)
        fields: dict[str, Any] = {
            "event": "hook_call",
            "hook": self.hook,
            "hookInstance": self.hook_instance,
            "outcome": outcome,
            "duration_ms": round(seconds * 1000, 1),
            "cards": self.cards,
            "band": self.band,
        }
        if kind is not None:
            fields["error"] = kind.__name__
        log.info("hook call %s", outcome, extra={"fields": fields})


router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics_endpoint(request: Request, state: State) -> Response:
    """Prometheus text format. With CTO_CDS_METRICS_TOKEN set, only `Authorization: Bearer <it>`;
    without one it is served in development only (elsewhere: 404, and a warning at start-up)."""
    token = state.settings.metrics_token
    if token is None:
        if state.settings.environment != "development":
            raise HTTPException(404, "Not Found")  # as any unknown path
    else:
        given = request.headers.get("authorization", "")
        expected = f"Bearer {token.get_secret_value()}"
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return unauthorized()
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})
