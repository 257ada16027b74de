"""FastAPI dependencies: the service state and the verified client (CH-24, CH-25)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from cds.auth.client_jwt import VerifiedClient
from cds.http.edge_guard import CLIENT_KEY
from cds.http.state import ServiceState


async def get_state(request: Request) -> ServiceState:
    # async on purpose: FastAPI runs a plain `def` dependency in a worker thread, a thread hop
    # (and a GIL hand-over) on every call for one attribute read.
    state: ServiceState = request.app.state.cds
    return state


State = Annotated[ServiceState, Depends(get_state)]


async def verified_client(request: Request, state: State) -> VerifiedClient:
    """The calling EHR, verified by `EdgeGuard` before the body was read (CH-24, CH-25).

    A route outside the guarded prefix verifies here; `aud` is the exact external URL called."""
    verified = request.scope.get("state", {}).get(CLIENT_KEY)
    if isinstance(verified, VerifiedClient):
        return verified
    audience = state.settings.public_base_url + request.url.path
    return await state.verifier.verify(request.headers.get("authorization"), audience)


Client = Annotated[VerifiedClient, Depends(verified_client)]
