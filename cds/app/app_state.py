"""What the SMART app holds for the service's lifetime (discovery cache, token vault, client
authentication), and how a route reaches it and the service state from its request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import Request

from cds.app.client_auth import ClientAuth
from cds.app.discovery import DiscoveryCache
from cds.app.vault import Vault
from cds.http.state import ServiceState


@dataclass
class SmartApp:
    """What the app holds for the service's lifetime, beside the service state."""

    discovery: DiscoveryCache
    vault: Vault
    client: ClientAuth


def service_of(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.cds
    return state


def smart_of(request: Request) -> SmartApp:
    smart: SmartApp = request.app.state.smart
    return smart


def utc_now() -> datetime:
    return datetime.now(UTC)
