"""What the service holds for its lifetime: configuration, tables, trust, the store, one HTTP client.

Built once at start-up (`build_state`), so a bad file or setting fails there with its name, never at
the first request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import httpx

from cds import metrics
from cds.auth.client_jwt import ClientJwtVerifier
from cds.auth.jwks import JwksCache
from cds.auth.trust import TrustedClient, load_trusted_clients
from cds.context.order import OrderTrigger
from cds.context.services import ServiceDefinition, load_services
from cds.mapping.matching import is_cto_pci
from cds.mapping.tables import MappingTables, load_tables
from cds.settings import Settings
from cds.sources.resources import ServiceRequest
from cds.store.audit_queue import AuditQueue, CardWrite
from cds.store.repository import Store

log = logging.getLogger("cds.http")


def order_trigger(tables: MappingTables) -> OrderTrigger:
    """The CTO-PCI trigger for `cds.context.order.cto_pci_order`: the order's code in the tables."""

    def trigger(order: ServiceRequest) -> bool:
        return is_cto_pci(tables, "ServiceRequest", order.code)

    return trigger


@dataclass
class ServiceState:
    settings: Settings
    tables: MappingTables
    services: list[ServiceDefinition]
    verifier: ClientJwtVerifier
    store: Store
    http: httpx.AsyncClient
    audit_failures: int = 0
    """Cards answered whose audit row or appContext handle could not be written (see /readyz)."""
    audit: AuditQueue = field(init=False)
    """Card audit rows and appContext handles, written behind the response
    (cds/store/audit_queue.py)."""

    def __post_init__(self) -> None:
        # Through `self.store` at write time: tests swap the store under a running service.
        self.audit = AuditQueue(self._save_cards, self._audit_batch_failed)

    async def _save_cards(self, writes: list[CardWrite]) -> None:
        await self.store.save_cards(
            [w.audit for w in writes], [w.handle for w in writes if w.handle is not None]
        )

    def _audit_batch_failed(self, rows: int, exc: BaseException) -> None:
        self.audit_failed("save_card", exc, rows)

    def audit_failed(self, what: str, exc: BaseException, rows: int = 1) -> None:
        """Count and log a failed audit write: one line, the exception class only (no PHI)."""
        self.audit_failures += rows
        metrics.DATABASE_ERRORS.labels("audit").inc(rows)
        log.error(
            "audit write %s failed (%s); card still returned; %d so far",
            what,
            type(exc).__name__,
            self.audit_failures,
        )

    def is_cto_pci(self, order: ServiceRequest) -> bool:
        return order_trigger(self.tables)(order)

    def service(self, service_id: str, hook: str | None = None) -> ServiceDefinition | None:
        for service in self.services:
            if service.id == service_id and (hook is None or service.hook == hook):
                return service
        return None

    async def close(self) -> None:
        await self.audit.close()  # the queued audit rows are written before the store closes
        await self.http.aclose()
        await self.store.close()


@dataclass(frozen=True)
class StaticConfig:
    """Files read once before the server starts: a bad one fails `create_app`, naming file/line."""

    tables: MappingTables
    services: list[ServiceDefinition]
    trusted: list[TrustedClient]


def load_static(settings: Settings, trusted: list[TrustedClient] | None = None) -> StaticConfig:
    if trusted is None:
        trusted = load_trusted_clients(settings.trusted_clients) if settings.trusted_clients else []
    return StaticConfig(load_tables(settings.mappings_dir), load_services(), trusted)


async def build_state(settings: Settings, static: StaticConfig) -> ServiceState:
    # One client for FHIR reads and JWKS fetches; no redirects, so tokens never leave the allowlist.
    http = httpx.AsyncClient(follow_redirects=False, timeout=httpx.Timeout(5.0))
    store = await Store.open(
        settings.database_url,
        migrate=settings.migrate_on_start,
        max_connections=settings.database_max_connections,
    )
    verifier = ClientJwtVerifier(
        static.trusted, JwksCache(http), store, leeway=settings.jwt_leeway_seconds
    )
    state = ServiceState(settings, static.tables, static.services, verifier, store, http)
    state.audit.start()
    return state
