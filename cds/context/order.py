"""Does this hook call concern a CTO-PCI order? Which one? (CH-09; pure.)

order-select acts on the `selections`; order-sign on every draft order. A ServiceRequest (R4) or
ProcedureRequest (STU3 clients) whose code maps to `cto_pci` in the mapping tables triggers the
service; anything else gets `{"cards": []}` without touching the FHIR server. A draft coded as a
CTO-PCI that the lean model refuses (a date not of FHIR's form) is a ContextError naming the element:
no card would read as "not a CTO-PCI order".

Which codes mean CTO-PCI is the mapping tables' business: the caller passes that check in as an
`OrderTrigger` (the HTTP layer builds it from the tables, `cds.http.state.order_trigger`), so this
package reads the request and does not depend on the mapping.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from cds.errors import ContextError
from cds.sources.resources import CodeableConcept, ResourceProblem, ServiceRequest, parse_resource

OrderTrigger = Callable[[ServiceRequest], bool]
"""Is this order a CTO-PCI? (The service's trigger, CH-09.)"""

ORDER_TYPES = ("ServiceRequest", "ProcedureRequest")


def _as_service_request(resource: Mapping[str, Any]) -> dict[str, Any]:
    """STU3 ProcedureRequest → the R4 ServiceRequest elements the mapping reads."""
    order = dict(resource)
    if order.get("resourceType") == "ProcedureRequest":
        order["resourceType"] = "ServiceRequest"
        performer = order.get("performer")
        if isinstance(performer, dict):
            order["performer"] = [performer]
        if "context" in order and "encounter" not in order:
            order["encounter"] = order.pop("context")
    return order


def _draft_orders(context: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    bundle = context.get("draftOrders")
    if not isinstance(bundle, Mapping) or not isinstance(bundle.get("entry", []), list):
        raise ContextError("context.draftOrders", "must be a Bundle of draft orders")
    return [
        e["resource"]
        for e in bundle.get("entry", [])
        if isinstance(e, Mapping) and isinstance(e.get("resource"), Mapping)
    ]


def cto_pci_order(
    hook: str, context: Mapping[str, Any], is_cto_pci: OrderTrigger
) -> dict[str, Any] | None:
    """The first CTO-PCI order among the acted-on draft orders, as an R4 ServiceRequest dict."""
    drafts = _draft_orders(context)
    if hook == "order-select":
        selections = context.get("selections")
        if not isinstance(selections, list) or not all(isinstance(s, str) for s in selections):
            raise ContextError("context.selections", "must be a list of Type/id references")
        chosen = set(selections)
        drafts = [d for d in drafts if f"{d.get('resourceType')}/{d.get('id')}" in chosen]
    for draft in drafts:
        if draft.get("resourceType") not in ORDER_TYPES:
            continue
        order = _as_service_request(draft)
        parsed = parse_resource(order)
        if isinstance(parsed, ServiceRequest) and is_cto_pci(parsed):
            return order
        if isinstance(parsed, ResourceProblem) and _coded_as_cto_pci(order, is_cto_pci):
            # A CTO-PCI order that cannot be read (a date not of FHIR's form): "no card" would
            # read as "not a CTO-PCI order". Refused naming the element, as an order dated 9999.
            raise ContextError(f"{parsed.resource}.{parsed.element}", parsed.message)
    return None


def _coded_as_cto_pci(order: Mapping[str, Any], is_cto_pci: OrderTrigger) -> bool:
    """Whether an order the lean model refuses has a readable code that marks a CTO-PCI."""
    try:
        code = CodeableConcept.model_validate(order.get("code"))
    except ValidationError:
        return False
    return is_cto_pci(ServiceRequest(resourceType="ServiceRequest", code=code))


def patient_id(context: Mapping[str, Any]) -> str:
    value = context.get("patientId")
    if not isinstance(value, str) or not value:
        raise ContextError("context.patientId", "is required")
    return value
