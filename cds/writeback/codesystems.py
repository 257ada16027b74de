"""The CodeSystems behind the codes write-back puts in score Observations and RiskAssessments (pure).

A score Observation codes its `method` (which score, in which cto-cds version), one `component` per
item and its `interpretation` (the band) in three systems of this project (identity.py). A site
loading them into its terminology server or FHIR server lets the EHR display and validate those
codes; without them they are opaque strings. They are generated from the score definitions
(`cds/scoring/scores/`, each weight and cut-off cited there) rather than kept as files beside them,
so a code can never be written that its CodeSystem does not define, nor a label drift from the
card's. The score Observations' own `code` is in the shipped cto-lesion CodeSystem
(mappings/cto-lesion.codesystem.json), with the lesion findings.
"""

from __future__ import annotations

from typing import Any

from cds import __version__
from cds.scoring.model import Band, ScoreDefinition
from cds.scoring.scores import SCORES
from cds.writeback.identity import BAND_SYSTEM, ITEM_SYSTEM, METHOD_SYSTEM

Json = dict[str, Any]


def _points(value: float) -> str:
    text = f"{value:+g}"
    return f"{text} point" if abs(value) == 1 else f"{text} points"


def _codesystem(system: str, name: str, title: str, description: str, concepts: list[Json]) -> Json:
    return {
        "resourceType": "CodeSystem",
        "id": system.rsplit("/", 1)[1],
        "url": system,
        "version": __version__,
        "name": name,
        "title": title,
        "status": "active",
        "experimental": False,
        "publisher": "cto-cds project",
        "description": description,
        "caseSensitive": True,
        "content": "complete",
        "count": len(concepts),
        "concept": concepts,
    }


def method_codesystem(scores: tuple[ScoreDefinition, ...] = SCORES) -> Json:
    """One code per score: the `method` of its score Observation (and of the RiskAssessment)."""
    concepts = [
        {
            "code": score.id,
            "display": score.name,
            "definition": f"{score.name} score, computed by cto-cds as published in "
            f"{score.citation}; predicts {score.outcome_label}.",
        }
        for score in scores
    ]
    return _codesystem(
        METHOD_SYSTEM,
        "CtoScoreMethod",
        "CTO-PCI scores computed by cto-cds",
        "The published CTO-PCI scores cto-cds computes; the coding's version is the cto-cds "
        "version that computed it.",
        concepts,
    )


def item_codesystem(scores: tuple[ScoreDefinition, ...] = SCORES) -> Json:
    """One code per score item (`{score}.{item}`): a score Observation's components."""
    concepts = [
        {
            "code": f"{score.id}.{item.id}",
            "display": item.label,  # as the component's coding shows it (scores.py)
            "definition": f"{score.name} item: {item.label}; {_points(item.points)} when present "
            f"({score.citation}). The component's valueBoolean says whether it is present; a "
            "dataAbsentReason that it is unknown.",
        }
        for score in scores
        for item in score.items
    ]
    return _codesystem(
        ITEM_SYSTEM,
        "CtoScoreItem",
        "Items of the CTO-PCI scores computed by cto-cds",
        "The items of each score cto-cds computes, as components of its score Observation.",
        concepts,
    )


def _band_range(score: ScoreDefinition, index: int, band: Band) -> str:
    """Totals in the band: up to its `upper` inclusive, above the band before it."""
    below = score.bands[index - 1].upper if index else None
    if below is None and band.upper is None:
        return "any total"
    if below is None:
        return f"a total of {band.upper:g} points or less"
    if band.upper is None:
        return f"a total above {below:g} points"
    return f"a total above {below:g} and up to {band.upper:g} points"


def band_codesystem(scores: tuple[ScoreDefinition, ...] = SCORES) -> Json:
    """One code per score band (`{score}.{band}`): a score Observation's interpretation."""
    concepts = [
        {
            "code": f"{score.id}.{band.id}",
            "display": f"{score.name}: {band.label}",  # band codings carry no display
            "definition": f"{score.name} band '{band.label}': {_band_range(score, i, band)} "
            f"({score.citation}).",
        }
        for score in scores
        for i, band in enumerate(score.bands)
    ]
    return _codesystem(
        BAND_SYSTEM,
        "CtoScoreBand",
        "Bands of the CTO-PCI scores computed by cto-cds",
        "The difficulty or risk bands of each score cto-cds computes, as the interpretation of "
        "its score Observation; a score whose unknown inputs leave more than one band possible "
        "has no interpretation.",
        concepts,
    )


def score_codesystems() -> list[Json]:
    """The three CodeSystems, in the order `cto-cds mappings export` writes them."""
    return [method_codesystem(), item_codesystem(), band_codesystem()]
