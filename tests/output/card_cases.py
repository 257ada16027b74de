"""Hand-made ScoredCases and card contexts for the card tests (CH-15..CH-21)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import cds.demo
from cds.cdshooks.response import Card, CdsResponse, dump
from cds.mapping.provenance import MappedInput
from cds.mapping.record_inputs import MappingResult
from cds.mapping.tables import load_tables
from cds.output.cards import CardContext
from cds.scored_case import ScoredCase
from cds.scoring.engine import score_all
from cds.scoring.inputs import inputs_in, parse_inputs
from tests.scoring.cases import NOTHING_PRESENT

COHORT = Path(cds.demo.__file__).parent / "cohort.ndjson"
TODAY = date(2026, 11, 25)
CARD_UUID = "3f1c2a8e-5b7d-4c3e-9a10-2b6f8d4e7c01"
LAUNCH = "https://app.cto-cds.org/launch"
DOCS = "https://cto-cds.org/docs/operator-cto"
PAPER = "https://doi.org/10.1155/2021/9988943"
LOCAL_SYSTEM = load_tables().rules.local_system

LESION = (
    "prior_cabg_target_vessel",
    "distal_vessel_disease",
    "in_stent_occlusion",
    "ostial_location",
)
"""Boolean lesion inputs worth 1 Operator-CTO point each, switched on in order."""
LESION_VALUES: dict[str, Any] = {
    "stump": "blunt",
    "calcification": "moderate",
    "tortuosity": "moderate",
    "occlusion_length_mm": 25,
    "rentrop_grade": 1,
}
"""Non-boolean lesion inputs worth 1 point each (after the booleans)."""
EXPERT = {
    "operator_annual_cto_volume": 80,
    "operator_cto_years": 9,
    "operator_last_year_success_rate": 0.95,
}
OPERATOR_INPUTS = inputs_in("operator")


def ctx(**changes: Any) -> CardContext:
    base: dict[str, Any] = {
        "card_uuid": CARD_UUID,
        "local_system": LOCAL_SYSTEM,
        "app_launch_url": LAUNCH,
        "app_context": "h.eyJjYXNlIjoiYWJjIn0.c2ln",
        "source_url": DOCS,
        "referral": True,
        "patient_ref": "Patient/p1",
        "order_ref": "ServiceRequest/o1",
    }
    return CardContext(**{**base, **changes})


def case_of(values: dict[str, Any], notes: dict[str, str] | None = None) -> ScoredCase:
    """A ScoredCase from canonical input values (None = unknown), with made-up provenance."""
    notes = notes or {}
    inputs = {
        name: MappedInput(
            value=value,
            sources=[] if value is None else [f"Observation/{name.replace('_', '-')}"],
            rule=f"test.{name}",
            evidence="unknown" if value is None else "lesion",
            note=notes.get(name, "no finding recorded" if value is None else None),
        )
        for name, value in values.items()
    }
    mapping = MappingResult(
        inputs=inputs,
        index_date=date(2026, 10, 15),
        order="ServiceRequest/o1",
        operator="Practitioner/op1",
        notes=[],
    )
    return ScoredCase(report=score_all(parse_inputs(mapping.values())), mapping=mapping)


def lesion(points: int, **changes: Any) -> dict[str, Any]:
    """NOTHING_PRESENT (a novice operator: adjustment 0) with `points` lesion items present."""
    values = dict(NOTHING_PRESENT)
    on = [*((name, True) for name in LESION), *LESION_VALUES.items()]
    values.update(dict(on[:points]))
    return {**values, **changes}


def body_of(card: Card) -> dict[str, Any]:
    return dump(CdsResponse(cards=[card]))
