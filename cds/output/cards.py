"""The Operator-CTO card (pure: no I/O, no clock, no settings).

`build_card` presents a `ScoredCase` as docs/spec/scores.md §1 asks, with the CDS Hooks models of
`cds.cdshooks.response` (CH-16..CH-18), which check the wire invariants when the card is built.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cds.cdshooks.coding import Coding
from cds.cdshooks.response import AbsoluteUrl, Action, Card, Link, Source, Suggestion, UuidText
from cds.output.card_detail import PRIMARY, render_detail, summary
from cds.output.wording import (
    EXPERT_OPERATOR,
    band_name,
    bands_text,
    cohort_size,
    points_text,
    range_text,
)
from cds.scored_case import ScoredCase
from cds.scoring.result import ScoreResult
from cds.scoring.scores.operator_cto import OPERATOR_CTO

SNOMED = "http://snomed.info/sct"


class CardContext(BaseModel):
    """What the card needs that is not in the case: ids, URLs, what could not be read, permissions.

    `patient_ref` and `order_ref` ("Patient/x", "ServiceRequest/y") are used by the referral
    suggestion; `order_ref` falls back to the mapped order. A referral needs a subject, so without
    `patient_ref` none is offered.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    card_uuid: UuidText
    local_system: AbsoluteUrl
    """The site's local CodeSystem (`rules.local_system`): override reasons and topic are coded in it."""
    app_launch_url: AbsoluteUrl
    app_context: str | None = None
    source_url: AbsoluteUrl
    referral: bool = False
    unread: list[str] = Field(default_factory=list)
    order_ref: str | None = None
    patient_ref: str | None = None


SEVERITY = tuple(band.id for band in OPERATOR_CTO.bands)
"""Operator-CTO bands, least severe first (the definition's order of increasing points)."""
INDICATOR: dict[str, Literal["info", "warning", "critical"]] = {
    "easy": "info",
    "moderate": "info",
    "difficult": "critical",
    "extremely_difficult": "critical",
}
"""A known band's indicator: critical only for a band known to be difficult or worse (issue 13)."""

OVERRIDE_REASONS: tuple[tuple[str, str], ...] = (
    ("override-findings-incorrect", "Angiographic findings incorrect or incomplete"),
    ("override-operator-experience", "Operator experience not as recorded"),
    ("override-different-operator", "Procedure planned by a different operator"),
    ("override-patient-factors", "Patient-specific factors outweigh the score"),
    ("override-not-applicable", "Score not applicable to this procedure"),
    ("override-review-in-app", "Will review the inputs in the app"),
)
"""CDS Hooks §4 item 7 / CH-16: CTO-specific override reasons (code, display) in the local system."""

TOPIC = ("operator-cto-score", "Operator-CTO score")
SOURCE_LABEL = "Operator-CTO score (Xiao 2021)"
APP_LINK_LABEL = "Review inputs and complete findings"
REFERRAL_LABEL = "Consider referral to a high-volume CTO operator"


def _local(ctx: CardContext, code: str, display: str) -> Coding:
    return Coding(system=ctx.local_system, code=code, display=display)


def worst_band(bands: list[str]) -> str:
    """The most severe of these Operator-CTO bands."""
    return max(bands, key=SEVERITY.index)


def certainly_difficult(result: ScoreResult) -> bool:
    """Every band the unknowns leave reachable is difficult or worse (or the band is known so)."""
    bands = [result.band] if result.band is not None else result.bands
    return bool(bands) and all(INDICATOR[band] == "critical" for band in bands)


def indicator(result: ScoreResult) -> Literal["info", "warning", "critical"]:
    """By what is known, not by what is missing (issue 13).

    critical: the band is known to be difficult or worse, or every reachable band is; info: a known
    easy or moderate band; warning: the band is undetermined (the summary says "incomplete: N
    findings missing", and the app link lets them be completed). A card that is critical because
    findings are missing would teach the cath team to ignore critical cards.
    """
    if certainly_difficult(result):
        return "critical"
    if result.band is not None:
        return INDICATOR[result.band]
    return "warning"


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
    """A draft referral ServiceRequest (CH-17), offered only when difficult or worse is certain
    with the recorded operator and the expert band is better.

    Code: SNOMED CT 306206005 |Referral to service (procedure)|, category 3457005 |Patient
    referral|. The PCI order goes in `supportingInfo`: R4 `reasonReference` may not point to a
    ServiceRequest. Not recommended (`isRecommended` false): the choice stays with the cardiologist.
    """
    improvement = expert_improvement(result)
    if not certainly_difficult(result) or improvement is None:
        return None
    if not ctx.referral or ctx.patient_ref is None:
        return None
    expert = result.scenarios["expert_operator"]
    now = f"{points_text(result.points, result.min, result.max)} points, {bands_text(result)}"
    then = range_text(expert)
    explanation = (
        f"Operator-CTO (Xiao 2021) with the recorded operator: {now}; with {EXPERT_OPERATOR}: "
        f"{then}. Small single-centre derivation cohort ({cohort_size(OPERATOR_CTO)} lesions)."
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
    """The Operator-CTO card for one scored order (CH-16..CH-18, docs/spec/scores.md §1)."""
    result = case.report.scores.get(PRIMARY)
    if result is None:
        raise ValueError("the case has no Operator-CTO result")
    suggestion = referral(result, ctx, ctx.order_ref or case.mapping.order)
    return Card(
        uuid=ctx.card_uuid,
        summary=summary(result, unread=bool(ctx.unread)),
        detail=render_detail(case, ctx.unread),
        indicator=indicator(result),
        source=Source(label=SOURCE_LABEL, url=ctx.source_url, topic=_local(ctx, *TOPIC)),
        suggestions=[suggestion] if suggestion else None,
        selection_behavior="any" if suggestion else None,
        override_reasons=[_local(ctx, code, display) for code, display in OVERRIDE_REASONS],
        links=links(result, ctx),
    )
