"""The planned resource and the pieces every built resource shares (pure).

A `Planned` resource is the JSON body the server should hold, its stable key (identity.py), the
digest of its content and the record resources it came from. `stamp` adds the digest and the
identifier after digesting; `timed` adds the time and the user, which are not content.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from cds.writeback.identity import DIGEST_EXTENSION, IDENTIFIER_SYSTEM, digest, full_url

Json = dict[str, Any]
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"


@dataclass(frozen=True)
class SaveContext:
    """Who saves what, for which order, when: everything the builder needs besides the case."""

    patient_id: str
    order_ref: str
    body_site: Json | None
    user: str | None
    now: datetime


@dataclass(frozen=True)
class Planned:
    """One resource the server should hold after the save."""

    key: str
    what: str
    resource_type: str
    body: Json
    digest: str
    sources: tuple[str, ...] = ()
    """Every record resource it was computed from (Provenance.entity); derivedFrom holds the subset
    of types R4 allows there."""
    only_if_held: bool = False
    """Written only over one the server holds (never created): the RiskAssessment that withdraws an
    estimate saved before (scores.no_estimate)."""

    @property
    def full_url(self) -> str:
        return full_url(self.key)


def coding(system: str, code: str, display: str | None = None) -> Json:
    out: Json = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def stamp(body: Json, what: str, key: str, sources: tuple[str, ...] = ()) -> Planned:
    """Digest the content, then add what does not count as content (digest, identifier)."""
    content_digest = digest([body, list(sources)] if sources else body)
    stamped = {
        "resourceType": body["resourceType"],
        # The tag repeats the key for servers without an identifier search on the type (sekmet
        # 0.1.1 RiskAssessment): `_tag` is a search every resource type has.
        "meta": {"tag": [{"system": IDENTIFIER_SYSTEM, "code": key}]},
        "extension": [{"url": DIGEST_EXTENSION, "valueString": content_digest}],
        "identifier": [{"system": IDENTIFIER_SYSTEM, "value": key}],
        **{k: v for k, v in body.items() if k != "resourceType"},
    }
    return Planned(key, what, body["resourceType"], stamped, content_digest, sources)


def timed(planned: Planned, ctx: SaveContext, when: str, *, many: bool = True) -> Planned:
    """Add the time and the user: neither is content (saving the same values later changes nothing)."""
    body = dict(planned.body)
    body[when] = ctx.now.isoformat()
    if ctx.user:
        who = {"reference": ctx.user}
        body["performer"] = [who] if many else who
    return replace(planned, body=body)
