"""The CDS Hooks 2.0 response: cards, suggestions, actions, links (docs/spec/cds-hooks-smart.md
CH-15..CH-21), validated when built, and `dump`, the CH-01 serialisation.

The models check the spec's machine-checkable invariants (CH-20) at construction, so an invalid card
cannot be sent. `dump` omits optional fields (never null or empty); the one empty value is
`{"cards": []}` (CH-01). camelCase on the wire, snake_case in Python.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from cds.cdshooks.coding import Coding

SUMMARY_LIMIT = 140
"""CH-16: a card's summary must be shorter than this."""

_ABSOLUTE_URL = re.compile(r"^https?://[^\s/?#]+\S*$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _absolute(url: str) -> str:
    if not _ABSOLUTE_URL.match(url):
        raise ValueError(f"not an absolute http(s) URL: {url!r}")
    return url


def _uuid(value: str) -> str:
    if not _UUID.match(value):
        raise ValueError(f"not a UUID: {value!r}")
    return value


AbsoluteUrl = Annotated[str, AfterValidator(_absolute)]
UuidText = Annotated[str, AfterValidator(_uuid)]


class _Model(BaseModel):
    """CDS Hooks JSON names (camelCase) on the wire, snake_case in Python; typos refused."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


class Source(_Model):
    """CH-16 `source`: label required; url and icon absolute; topic (a Coding) new in 2.0."""

    label: str = Field(min_length=1)
    url: AbsoluteUrl | None = None
    icon: AbsoluteUrl | None = None
    topic: Coding | None = None

    @model_validator(mode="after")
    def _topic_coded(self) -> Source:
        if self.topic is not None and not self.topic.complete:
            raise ValueError("source.topic needs a system and a code (CH-16)")
        return self


class Link(_Model):
    """CH-18: label, url, type required; appContext only on smart links."""

    label: str = Field(min_length=1)
    url: AbsoluteUrl
    type: Literal["absolute", "smart"]
    app_context: str | None = Field(default=None, min_length=1)
    autolaunchable: bool | None = None

    @model_validator(mode="after")
    def _app_context_on_smart_only(self) -> Link:
        if self.app_context is not None and self.type != "smart":
            raise ValueError("appContext is only allowed on smart links (CH-18, CH-20)")
        return self


class Action(_Model):
    """CH-17: create carries a new resource, update the whole resource, delete a resourceId."""

    type: Literal["create", "update", "delete"]
    description: str = Field(min_length=1)
    resource: dict[str, Any] | None = None
    resource_id: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _shape(self) -> Action:
        if self.type == "delete":
            if self.resource_id is None or self.resource is not None:
                raise ValueError("delete needs resourceId and no resource (CH-17, CH-20)")
        elif not self.resource or "resourceType" not in self.resource:
            raise ValueError(f"{self.type} needs a FHIR resource (CH-17)")
        return self


class Suggestion(_Model):
    """CH-17: label required; uuid (needed for feedback), isRecommended (2.0), actions."""

    label: str = Field(min_length=1)
    uuid: UuidText | None = None
    is_recommended: bool | None = None
    actions: list[Action] | None = None


class Card(_Model):
    """CH-16: summary < 140 characters, indicator, source; selectionBehavior iff suggestions."""

    uuid: UuidText | None = None
    summary: str = Field(min_length=1, max_length=SUMMARY_LIMIT - 1)
    detail: str | None = None
    indicator: Literal["info", "warning", "critical"]
    source: Source
    suggestions: list[Suggestion] | None = None
    selection_behavior: Literal["at-most-one", "any"] | None = None
    override_reasons: list[Coding] | None = None
    links: list[Link] | None = None

    @model_validator(mode="after")
    def _invariants(self) -> Card:
        if bool(self.suggestions) != (self.selection_behavior is not None):
            raise ValueError("selectionBehavior is required iff there are suggestions (CH-16)")
        if self.selection_behavior == "at-most-one":
            recommended = sum(1 for s in self.suggestions or [] if s.is_recommended)
            if recommended > 1:
                raise ValueError("at-most-one allows one recommended suggestion (CH-20)")
        for reason in self.override_reasons or []:
            if not reason.display:
                raise ValueError("every overrideReason needs a display (CH-16, CH-20)")
            if not reason.complete:
                raise ValueError("every overrideReason needs a system and a code (CH-16)")
        return self


class CdsResponse(_Model):
    """CH-15: `{"cards": [...], "systemActions": [...]?}`."""

    cards: list[Card] = Field(default_factory=list)
    system_actions: list[Action] | None = None


def _prune(value: Any) -> Any:
    """Drop None, "", [] and {} at every depth (CH-01)."""
    if isinstance(value, dict):
        kept = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in (None, "", [], {})}
    if isinstance(value, list):
        return [v for v in map(_prune, value) if v not in (None, "", [], {})]
    return value


def dump(response: CdsResponse | Card) -> dict[str, Any]:
    """JSON-ready dict per CH-01: optional fields omitted; a response always keeps `cards`."""
    body: dict[str, Any] = _prune(response.model_dump(mode="json", exclude_none=True))
    if isinstance(response, CdsResponse):
        body.setdefault("cards", [])
    return body
