"""The CodeSystems of the codes write-back writes: valid FHIR, and defining every code it writes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from cds.demo.cohort_data import COHORT_EXPECTED
from cds.mapping.export import validate
from cds.mapping.tables import DEFAULT_DIR, MappingTables, load_tables
from cds.scoring.scores import SCORES
from cds.writeback.codesystems import (
    band_codesystem,
    item_codesystem,
    method_codesystem,
    score_codesystems,
)
from cds.writeback.identity import BAND_SYSTEM, ITEM_SYSTEM, METHOD_SYSTEM, PROJECT_BASE
from tests.writeback.test_build import FINDINGS, build

LESION = json.loads((DEFAULT_DIR / "cto-lesion.codesystem.json").read_text("utf-8"))


@pytest.fixture(scope="module")
def tables() -> MappingTables:
    return load_tables()


def codings(value: Any) -> Iterator[dict[str, Any]]:
    """Every Coding in a resource (a dict with both `system` and `code`)."""
    if isinstance(value, dict):
        if isinstance(value.get("system"), str) and isinstance(value.get("code"), str):
            yield value
        for inner in value.values():
            yield from codings(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from codings(inner)


def defined() -> dict[str, dict[str, dict[str, Any]]]:
    """system -> code -> concept, for the project's four CodeSystems."""
    return {
        cs["url"]: {c["code"]: c for c in cs["concept"]} for cs in [*score_codesystems(), LESION]
    }


@pytest.mark.parametrize("codesystem", score_codesystems(), ids=lambda cs: cs["id"])
def test_each_codesystem_is_valid_r4_with_unique_codes(codesystem: dict[str, Any]) -> None:
    validate(codesystem)
    codes = [c["code"] for c in codesystem["concept"]]
    assert len(codes) == len(set(codes)) == codesystem["count"]
    assert codesystem["url"].endswith("/" + codesystem["id"])
    assert all(c["display"] and c["definition"] for c in codesystem["concept"])


def test_every_item_band_and_score_has_its_code() -> None:
    assert {c["code"] for c in method_codesystem()["concept"]} == {s.id for s in SCORES}
    items = {c["code"]: c for c in item_codesystem()["concept"]}
    assert len(items) == sum(len(s.items) for s in SCORES)
    # Xiao 2021 Table 3: a blunt or invisible stump adds 1 point; a last-year success ≥ 90 % takes 2.
    assert "+1 point when present" in items["operator_cto.blunt_stump"]["definition"]
    assert "-2 points when present" in items["operator_cto.operator_success_ge_90"]["definition"]
    bands = {c["code"]: c["definition"] for c in band_codesystem()["concept"]}
    assert len(bands) == sum(len(s.bands) for s in SCORES)
    # The Operator-CTO bands (Xiao 2021): easy ≤ 2, moderate 3, difficult 4, extremely difficult ≥ 5.
    assert "a total of 2 points or less" in bands["operator_cto.easy"]
    assert "above 2 and up to 3 points" in bands["operator_cto.moderate"]
    assert "a total above 4 points" in bands["operator_cto.extremely_difficult"]


def test_every_project_code_written_back_is_defined_with_its_display(
    tables: MappingTables,
) -> None:
    """Score Observations and RiskAssessments built for cohort patients of every band: each coding
    in a cto-cds system names a concept of that system, with the same display."""
    known = defined()
    seen: dict[str, set[str]] = {}
    patients = [p["patient"] for p in json.loads(COHORT_EXPECTED.read_text("utf-8"))["patients"]]
    for patient in patients:
        for planned in build(tables, FINDINGS, patient=patient).values():
            for coding in codings(planned.body):
                system = coding["system"]
                if not system.startswith(f"{PROJECT_BASE}/CodeSystem/"):
                    continue
                assert system in known, system
                concept = known[system].get(coding["code"])
                assert concept is not None, f"{system}|{coding['code']} is not defined"
                if "display" in coding:
                    assert coding["display"] == concept["display"], coding
                seen.setdefault(system, set()).add(coding["code"])
    # The walk met all three generated systems, and more than one band.
    assert {METHOD_SYSTEM, ITEM_SYSTEM, BAND_SYSTEM} <= set(seen)
    assert len(seen[BAND_SYSTEM]) > 1
