"""The CDS Hooks 2.0 response and the Operator-CTO card (pure: no I/O, no clock, no settings).

Models follow cds-hooks-smart.md §1.5 (CH-15..CH-21) and validate its invariants when built; `dump`
serialises per CH-01 (optional fields omitted, never null or empty; the one empty value is
`{"cards": []}`). `build_card` presents a `ScoredCase` as shared/spec/scores.md §1 asks.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from cds.output.card_detail import PRIMARY, SUMMARY_LIMIT, render_detail, summary
from cds.output.wording import (
    EXPERT_OPERATOR,
    band_name,
    bands_text,
    points_text,
    range_text,
)
from cds.scoring.result import ScoreResult

if TYPE_CHECKING:
    from cds.pipeline import ScoredCase

LOCAL_SYSTEM = "http://cto-cds.org/fhir/CodeSystem/cto-lesion"
SNOMED = "http://snomed.info/sct"

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
    """CDS Hooks JSON names (camelCase) on the wire, snake_case in Python."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


class Coding(_Model):
    system: str = Field(min_length=1)
    code: str = Field(min_length=1)
    display: str | None = None


class Source(_Model):
    """CH-16 `source`: label required; url and icon absolute; topic new in 2.0."""

    label: str = Field(min_length=1)
    url: AbsoluteUrl | None = None
    icon: AbsoluteUrl | None = None
    topic: Coding | None = None


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
        if any(not reason.display for reason in self.override_reasons or []):
            raise ValueError("every overrideReason needs a display (CH-16, CH-20)")
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


# --- the Operator-CTO card -------------------------------------------------------------------


class CardContext(BaseModel):
    """What the card needs that is not in the case: ids, URLs, what could not be read, permissions.

    `patient_ref` and `order_ref` ("Patient/x", "ServiceRequest/y") are used by the referral
    suggestion; `order_ref` falls back to the mapped order. A referral needs a subject, so without
    `patient_ref` none is offered.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    card_uuid: UuidText
    app_launch_url: AbsoluteUrl
    app_context: str | None = None
    source_url: AbsoluteUrl
    referral: bool = False
    unread: list[str] = Field(default_factory=list)
    order_ref: str | None = None
    patient_ref: str | None = None


SEVERITY = ("easy", "moderate", "difficult", "extremely_difficult")
INDICATOR: dict[str, Literal["info", "warning", "critical"]] = {
    "easy": "info",
    "moderate": "warning",
    "difficult": "critical",
    "extremely_difficult": "critical",
}

OVERRIDE_REASONS: tuple[Coding, ...] = tuple(
    Coding(system=LOCAL_SYSTEM, code=code, display=display)
    for code, display in (
        ("override-findings-incorrect", "Angiographic findings incorrect or incomplete"),
        ("override-operator-experience", "Operator experience not as recorded"),
        ("override-different-operator", "Procedure planned by a different operator"),
        ("override-patient-factors", "Patient-specific factors outweigh the score"),
        ("override-not-applicable", "Score not applicable to this procedure"),
        ("override-review-in-app", "Will review the inputs in the app"),
    )
)
"""CDS Hooks §4 item 7 / CH-16: CTO-specific override reasons, each with a display."""

TOPIC = Coding(system=LOCAL_SYSTEM, code="operator-cto-score", display="Operator-CTO score")
SOURCE_LABEL = "Operator-CTO score (Xiao 2021)"
APP_LINK_LABEL = "Review inputs and complete findings"
REFERRAL_LABEL = "Consider referral to a high-volume CTO operator"


def worst_band(bands: list[str]) -> str:
    """The most severe of these Operator-CTO bands."""
    return max(bands, key=SEVERITY.index)


def indicator(result: ScoreResult) -> Literal["info", "warning", "critical"]:
    """info for easy, warning for moderate, critical for difficult and extremely difficult.

    When unknown inputs leave several bands possible, the most severe reachable band decides: a cath
    team must not be reassured by an "info" card for a lesion that may be extremely difficult. The
    summary says it is a range, and the app link lets the missing findings be completed.
    """
    return INDICATOR[worst_band(result.bands or [result.band or SEVERITY[-1]])]


def expert_improvement(result: ScoreResult) -> tuple[str, str] | None:
    """(current worst band, expert worst band) when an expert operator gives a less severe band.

    Bands compare by their most severe reachable member, as the indicator does; the expert scenario
    changes only operator inputs, so it is never worse for any completion of the unknowns.
    """
    expert = result.scenarios.get("expert_operator")
    if expert is None or not expert.bands or not result.bands:
        return None
    now, then = worst_band(result.bands), worst_band(expert.bands)
    return (now, then) if SEVERITY.index(then) < SEVERITY.index(now) else None


def _worst_text(band: str | None, worst: str) -> str:
    return band_name(worst) if band is not None else f"at worst {band_name(worst)}"


def referral(result: ScoreResult, ctx: CardContext, order_ref: str | None) -> Suggestion | None:
    """A draft referral ServiceRequest (CH-17), offered only when the expert band is better.

    Code: SNOMED CT 306206005 |Referral to service (procedure)|, category 3457005 |Patient
    referral|. The PCI order goes in `supportingInfo`: R4 `reasonReference` may not point to a
    ServiceRequest. Not recommended (`isRecommended` false): the choice stays with the cardiologist.
    """
    improvement = expert_improvement(result)
    if improvement is None or not ctx.referral or ctx.patient_ref is None:
        return None
    expert = result.scenarios["expert_operator"]
    now = f"{points_text(result.points, result.min, result.max)} points, {bands_text(result)}"
    then = range_text(expert)
    explanation = (
        f"Operator-CTO (Xiao 2021) with the recorded operator: {now}; with {EXPERT_OPERATOR}: "
        f"{then}. Small single-centre derivation cohort (144 lesions)."
    )
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "proposal",
        "category": [
            {"coding": [{"system": SNOMED, "code": "3457005", "display": "Patient referral"}]}
        ],
        "code": {
            "coding": [{"system": SNOMED, "code": "306206005", "display": "Referral to service"}],
            "text": "Referral to a high-volume CTO-PCI operator",
        },
        "subject": {"reference": ctx.patient_ref},
        "reasonCode": [
            {
                "text": f"Operator-CTO {_worst_text(result.band, improvement[0])} with the "
                f"recorded operator, {_worst_text(expert.band, improvement[1])} with an "
                "experienced CTO operator"
            }
        ],
        "note": [{"text": explanation}],
    }
    if order_ref:
        resource["supportingInfo"] = [{"reference": order_ref, "display": "CTO-PCI order"}]
    return Suggestion(
        label=REFERRAL_LABEL,
        uuid=str(uuid.uuid5(uuid.UUID(ctx.card_uuid), "referral")),
        is_recommended=False,
        actions=[
            Action(
                type="create",
                description="Draft a referral to a high-volume CTO-PCI operator",
                resource=resource,
            )
        ],
    )


def links(result: ScoreResult, ctx: CardContext) -> list[Link]:
    """The SMART review app (with the opaque appContext handle, SM-08) and the paper (CH-18)."""
    found = [
        Link(
            label=APP_LINK_LABEL,
            url=ctx.app_launch_url,
            type="smart",
            app_context=ctx.app_context or None,
        )
    ]
    if result.url:
        found.append(
            Link(
                label="Operator-CTO paper (Xiao 2021, open access)", url=result.url, type="absolute"
            )
        )
    return found


def build_card(case: ScoredCase, ctx: CardContext) -> Card:
    """The Operator-CTO card for one scored order (CH-16..CH-18, shared/spec/scores.md §1)."""
    result = case.report.scores.get(PRIMARY)
    if result is None:
        raise ValueError("the case has no Operator-CTO result")
    suggestion = referral(result, ctx, ctx.order_ref or case.mapping.order)
    return Card(
        uuid=ctx.card_uuid,
        summary=summary(result, unread=bool(ctx.unread)),
        detail=render_detail(case, ctx.unread),
        indicator=indicator(result),
        source=Source(label=SOURCE_LABEL, url=ctx.source_url, topic=TOPIC),
        suggestions=[suggestion] if suggestion else None,
        selection_behavior="any" if suggestion else None,
        override_reasons=list(OVERRIDE_REASONS),
        links=links(result, ctx),
    )
