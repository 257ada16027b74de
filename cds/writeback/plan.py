"""What a save does, given what the server holds: create, update or leave unchanged (pure).

A planned resource whose key the server already holds with the same content digest is left alone;
with another digest it is updated in place (PUT with If-Match on the version read, so a concurrent
change is a 412, not a lost update); a key the server does not hold is created with If-None-Exist on
the identifier, unless it is to be written only over one held (`Planned.only_if_held`: the
RiskAssessment withdrawing an estimate), then it is left out. A Provenance is added only when
something is written: saving the same inputs again writes nothing at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from cds import __version__
from cds.writeback.identity import DEVICE_SYSTEM, IDENTIFIER_SYSTEM, digest, identifier_token
from cds.writeback.resource import Json, Planned, SaveContext

Action = Literal["create", "update", "unchanged"]
PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
_PROVENANCE_NS = uuid.UUID("0b8d3a52-8f5e-5d7a-b0f4-9e6c2d1a3b47")


@dataclass(frozen=True)
class Held:
    """The server's current resource for one key: its reference, version and content digest."""

    ref: str
    version: str | None
    digest: str | None


@dataclass(frozen=True)
class Step:
    action: Action
    planned: Planned
    held: Held | None

    @property
    def label(self) -> str:
        """Names the resource in messages: what it records and, when known, its reference."""
        where = self.held.ref if self.held else self.planned.resource_type
        return f"{where} ({self.planned.what})"


@dataclass(frozen=True)
class WritePlan:
    steps: tuple[Step, ...]
    provenance: Json | None
    provenance_url: str | None = None

    @property
    def writes(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.action != "unchanged")


def resolve_refs(value: Any, known: Mapping[str, str]) -> Any:
    """A copy of a JSON value with every `reference` found in `known` replaced by its target."""
    if isinstance(value, dict):
        return {
            k: (
                known.get(v, v)
                if k == "reference" and isinstance(v, str)
                else resolve_refs(v, known)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [resolve_refs(v, known) for v in value]
    return value


def _sources(planned: Iterable[Planned]) -> list[str]:
    """Record resources the written ones were derived from (not our own urn:uuid resources)."""
    refs: dict[str, None] = {}
    for p in planned:
        for ref in p.sources:
            if not ref.startswith("urn:uuid:"):
                refs[ref] = None
    return list(refs)


def provenance(ctx: SaveContext, targets: list[str], sources: list[str]) -> Json:
    """Who wrote what from what: the user (author) and this software (a Device by identifier)."""
    software = {
        "identifier": {"system": DEVICE_SYSTEM, "value": "cto-cds"},
        "display": f"cto-cds {__version__}",
        "type": "Device",
    }
    agents: list[Json] = []
    if ctx.user:
        agents.append(
            {
                "type": {"coding": [{"system": PARTICIPANT, "code": "author"}]},
                "who": {"reference": ctx.user},
            }
        )
    agents.append(
        {
            # Without a user the software is the author: a system write (SM-10) says so.
            "type": {
                "coding": [{"system": PARTICIPANT, "code": "assembler" if ctx.user else "author"}]
            },
            "who": software,
        }
    )
    body: Json = {
        "resourceType": "Provenance",
        "target": [{"reference": t} for t in targets],
        "recorded": ctx.now.isoformat(),
        "agent": agents,
    }
    if sources:
        body["entity"] = [{"role": "source", "what": {"reference": s}} for s in sources]
    return body


def plan_writes(planned: list[Planned], held: Mapping[str, Held], ctx: SaveContext) -> WritePlan:
    known = {p.full_url: held[p.key].ref for p in planned if p.key in held}
    steps: list[Step] = []
    for p in planned:
        current = held.get(p.key)
        if current is None and p.only_if_held:
            continue
        if current is None:
            action: Action = "create"
        elif current.digest == p.digest:
            action = "unchanged"
        else:
            action = "update"
        body = resolve_refs(p.body, known)
        if current is not None:
            body["id"] = current.ref.split("/", 1)[1]
        if action == "update" and body.get("status") == "final":
            # Changed after it was final (FHIR observation-status). Not content: not in the digest.
            body["status"] = "amended"
        steps.append(Step(action, replace(p, body=body), current))
    writes = [s for s in steps if s.action != "unchanged"]
    if not writes:
        return WritePlan(tuple(steps), None)
    targets = [s.held.ref if s.held else s.planned.full_url for s in writes]
    stamp = digest([s.planned.digest for s in writes])
    prov = provenance(ctx, targets, _sources(s.planned for s in steps))
    return WritePlan(tuple(steps), prov, f"urn:uuid:{uuid.uuid5(_PROVENANCE_NS, stamp)}")


def key_search(kind: str, key: str, identifier_types: frozenset[str] | None) -> str:
    """The search that finds a key: by identifier, or by tag where the server has no identifier
    search on the type (None = the server did not say: the standard identifier search)."""
    if identifier_types is None or kind in identifier_types:
        return f"identifier={identifier_token(key)}"
    return f"_tag={identifier_token(key)}"


def transaction(plan: WritePlan, identifier_types: frozenset[str] | None = None) -> Json:
    """The one transaction Bundle: conditional creates, If-Match updates, then the Provenance."""
    entries: list[Json] = []
    for step in plan.writes:
        p = step.planned
        if step.action == "create":
            request = {
                "method": "POST",
                "url": p.resource_type,
                "ifNoneExist": key_search(p.resource_type, p.key, identifier_types),
            }
            entries.append({"fullUrl": p.full_url, "resource": p.body, "request": request})
        else:
            assert step.held is not None
            request = {"method": "PUT", "url": step.held.ref}
            if step.held.version:
                request["ifMatch"] = f'W/"{step.held.version}"'
            entries.append({"resource": p.body, "request": request})
    if plan.provenance is not None:
        entries.append(
            {
                "fullUrl": plan.provenance_url,
                "resource": plan.provenance,
                "request": {"method": "POST", "url": "Provenance"},
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def held_from(resource: Mapping[str, Any]) -> tuple[str, Held] | None:
    """The key and state of a resource the server returned, if it carries our identifier."""
    key = next(
        (
            i.get("value")
            for i in _list(resource.get("identifier"))
            if isinstance(i, dict) and i.get("system") == IDENTIFIER_SYSTEM
        ),
        None,
    )
    rid = resource.get("id")
    if not isinstance(key, str) or not isinstance(rid, str):
        return None
    stored = next(
        (
            e.get("valueString")
            for e in _list(resource.get("extension"))
            if isinstance(e, dict) and str(e.get("url")).endswith("/write-back-digest")
        ),
        None,
    )
    meta = resource.get("meta")
    version = meta.get("versionId") if isinstance(meta, dict) else None
    return key, Held(
        f"{resource.get('resourceType')}/{rid}",
        version if isinstance(version, str) else None,
        stored if isinstance(stored, str) else None,
    )


def _list(value: object) -> list[Any]:
    """A server's array element; anything else (`null`, an object) is read as empty."""
    return value if isinstance(value, list) else []
