"""What a save does, given what the server holds: create, update or leave unchanged (pure).

A planned resource whose key the server already holds with the same content digest is left alone;
with another digest it is updated in place (PUT with If-Match on the version read, so a concurrent
change is a 412, not a lost update); a key the server does not hold is created with If-None-Exist on
the identifier, unless it is to be written only over one held (`Planned.only_if_held`: the
RiskAssessment withdrawing an estimate), then it is left out. A Provenance is added only when
something is written: saving the same inputs again writes nothing at all.

Each written resource names its save (`write-back-save` extension, not content), and that save's
Provenance carries the same id as a tag. A sequential save whose Provenance POST failed leaves
resources naming a save with no Provenance: the next save, finding them unchanged, looks the ids up
(`_tag`; R4 Provenance has no identifier) and re-sends what is missing (`lost_provenances`), so those
versions do not stay without provenance. With the Provenance there, it is one read, no write.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from cds import __version__
from cds.writeback.identity import (
    DEVICE_SYSTEM,
    IDENTIFIER_SYSTEM,
    SAVE_EXTENSION,
    SAVE_SYSTEM,
    digest,
    identifier_token,
)
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
    save: str | None = None
    """The save that wrote this version (`write-back-save`), whose Provenance names it."""
    author: str | None = None
    """Who saved it (`performer`), the author of a Provenance re-sent for it."""


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
    save: str | None = None
    """This save's id (on each resource written and as its Provenance's tag)."""

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


def provenance(
    ctx: SaveContext, targets: list[str], sources: list[str], save: str, user: str | None
) -> Json:
    """Who wrote what from what: the user (author; None: a system write) and this software (a
    Device by identifier). Recorded now; `save` tags it (the id its resources carry)."""
    software = {
        "identifier": {"system": DEVICE_SYSTEM, "value": "cto-cds"},
        "display": f"cto-cds {__version__}",
        "type": "Device",
    }
    agents: list[Json] = []
    if user:
        agents.append(
            {
                "type": {"coding": [{"system": PARTICIPANT, "code": "author"}]},
                "who": {"reference": user},
            }
        )
    agents.append(
        {
            # Without a user the software is the author: a system write (SM-10) says so.
            "type": {
                "coding": [{"system": PARTICIPANT, "code": "assembler" if user else "author"}]
            },
            "who": software,
        }
    )
    body: Json = {
        "resourceType": "Provenance",
        "meta": {"tag": [{"system": SAVE_SYSTEM, "code": save}]},
        "target": [{"reference": t} for t in targets],
        "recorded": ctx.now.isoformat(),
        "agent": agents,
    }
    if sources:
        body["entity"] = [{"role": "source", "what": {"reference": s}} for s in sources]
    return body


def plan_writes(planned: list[Planned], held: Mapping[str, Held], ctx: SaveContext) -> WritePlan:
    known = {p.full_url: held[p.key].ref for p in planned if p.key in held}
    changed = [
        p.digest
        for p in planned
        if (p.key in held and held[p.key].digest != p.digest)
        or (p.key not in held and not p.only_if_held)
    ]
    # Unique per save (the time and user too): the same change saved twice is two saves.
    save = str(uuid.uuid5(_PROVENANCE_NS, f"{digest(changed)}|{ctx.now.isoformat()}|{ctx.user}"))
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
        if action != "unchanged":
            body["extension"] = [
                *(e for e in body.get("extension", []) if e.get("url") != SAVE_EXTENSION),
                {"url": SAVE_EXTENSION, "valueString": save},
            ]
        steps.append(Step(action, replace(p, body=body), current))
    writes = [s for s in steps if s.action != "unchanged"]
    if not writes:
        return WritePlan(tuple(steps), None)
    targets = [s.held.ref if s.held else s.planned.full_url for s in writes]
    prov = provenance(ctx, targets, _sources(s.planned for s in steps), save, ctx.user)
    return WritePlan(tuple(steps), prov, f"urn:uuid:{save}", save)


def saves_named(plan: WritePlan) -> list[str]:
    """The saves that wrote the held resources this save leaves unchanged: their Provenances
    should be on the server."""
    return list(
        dict.fromkeys(
            s.held.save for s in plan.steps if s.action == "unchanged" and s.held and s.held.save
        )
    )


def lost_provenances(plan: WritePlan, found: Iterable[str], ctx: SaveContext) -> list[Json]:
    """A Provenance for each save whose resources are held but whose Provenance is not (its POST
    failed after the writes, in a sequential save): the held resources naming that save and left
    unchanged now as targets (one updated now is this save's), their performer as author, recorded
    now."""
    have = set(found)
    out = []
    for save in saves_named(plan):
        if save in have:
            continue
        steps = [
            s for s in plan.steps if s.action == "unchanged" and s.held and s.held.save == save
        ]
        targets = [s.held.ref for s in steps if s.held]
        author = next((s.held.author for s in steps if s.held and s.held.author), None)
        sources = _sources(s.planned for s in steps)
        out.append(provenance(ctx, targets, sources, save, author))
    return out


def save_tag(save: str) -> str:
    """The search token of a save's Provenance (by tag: R4 Provenance has no identifier)."""
    return f"{SAVE_SYSTEM}|{save}"


def saves_tagged(resource: Mapping[str, Any]) -> list[str]:
    """The save ids a Provenance the server returned is tagged with."""
    meta = resource.get("meta")
    tags = _list(meta.get("tag")) if isinstance(meta, dict) else []
    return [
        t["code"]
        for t in tags
        if isinstance(t, dict) and t.get("system") == SAVE_SYSTEM and isinstance(t.get("code"), str)
    ]


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
    save = next(
        (
            e.get("valueString")
            for e in _list(resource.get("extension"))
            if isinstance(e, dict) and e.get("url") == SAVE_EXTENSION
        ),
        None,
    )
    meta = resource.get("meta")
    version = meta.get("versionId") if isinstance(meta, dict) else None
    return key, Held(
        f"{resource.get('resourceType')}/{rid}",
        version if isinstance(version, str) else None,
        stored if isinstance(stored, str) else None,
        save if isinstance(save, str) else None,
        _performer(resource.get("performer")),
    )


def _performer(value: object) -> str | None:
    """The reference of a resource's performer (a list on Observation, one on RiskAssessment)."""
    first = value[0] if isinstance(value, list) and value else value
    ref = first.get("reference") if isinstance(first, dict) else None
    return ref if isinstance(ref, str) else None


def _list(value: object) -> list[Any]:
    """A server's array element; anything else (`null`, an object) is read as empty."""
    return value if isinstance(value, list) else []
