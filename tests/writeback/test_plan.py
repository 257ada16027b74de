"""What a save does given what the server holds (pure): create, update, unchanged, Provenance."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from cds.mapping.tables import MappingTables, load_tables
from cds.writeback.build import validate_json
from cds.writeback.identity import SAVE_EXTENSION, SAVE_SYSTEM, identifier_token
from cds.writeback.plan import Held, lost_provenances, plan_writes, saves_named, transaction
from cds.writeback.resource import Planned, SaveContext
from tests.writeback.test_build import FINDINGS, build

CTX = SaveContext(
    "pt01",
    "ServiceRequest/pt01-order",
    None,
    "Practitioner/op-expert",
    datetime(2026, 9, 3, tzinfo=UTC),
)


def planned(tables: MappingTables) -> list[Planned]:
    return list(build(tables, FINDINGS).values())


def test_nothing_held_creates_everything_with_conditional_creates() -> None:
    items = planned(load_tables())
    plan = plan_writes(items, {}, CTX)
    assert [s.action for s in plan.steps] == ["create"] * len(items)
    bundle = transaction(plan)
    assert bundle["type"] == "transaction"
    assert len(bundle["entry"]) == len(items) + 1  # + Provenance
    first = bundle["entry"][0]
    assert first["request"] == {
        "method": "POST",
        "url": "Observation",
        "ifNoneExist": f"identifier={identifier_token(items[0].key)}",
    }
    assert first["fullUrl"] == items[0].full_url
    provenance = bundle["entry"][-1]["resource"]
    assert {t["reference"] for t in provenance["target"]} == {p.full_url for p in items}
    assert provenance["agent"][0]["who"] == {"reference": "Practitioner/op-expert"}
    assert provenance["agent"][1]["who"]["identifier"]["value"] == "cto-cds"
    assert all(not e["what"]["reference"].startswith("urn:") for e in provenance["entity"])
    # A server without identifier search on RiskAssessment gets the tag search instead.
    tagged = transaction(plan, frozenset({"Observation"}))
    risk = next(e for e in tagged["entry"] if e["request"]["url"] == "RiskAssessment")
    assert risk["request"]["ifNoneExist"].startswith("_tag=")


def test_same_digests_write_nothing_not_even_a_provenance() -> None:
    items = planned(load_tables())
    held = {p.key: Held(f"{p.resource_type}/id{i}", "1", p.digest) for i, p in enumerate(items)}
    plan = plan_writes(items, held, CTX)
    assert {s.action for s in plan.steps} == {"unchanged"}
    assert plan.provenance is None
    assert transaction(plan)["entry"] == []


def test_a_changed_digest_is_an_if_match_update_and_references_are_resolved() -> None:
    items = planned(load_tables())
    held = {p.key: Held(f"{p.resource_type}/id{i}", "3", p.digest) for i, p in enumerate(items)}
    stump = next(p for p in items if p.what == "finding stump")
    held[stump.key] = Held(held[stump.key].ref, "3", "old-digest")
    plan = plan_writes(items, held, CTX)
    writes = plan.writes
    assert [s.planned.what for s in writes] == ["finding stump"]
    entry = transaction(plan)["entry"][0]
    assert entry["request"] == {"method": "PUT", "url": held[stump.key].ref, "ifMatch": 'W/"3"'}
    assert entry["resource"]["id"] == held[stump.key].ref.split("/")[1]
    assert entry["resource"]["status"] == "amended"
    operator = next(s for s in plan.steps if s.planned.what == "score operator_cto")
    refs = {d["reference"] for d in operator.planned.body["derivedFrom"]}
    assert held[stump.key].ref in refs  # urn:uuid of a held resource replaced by its reference
    assert not [r for r in refs if r.startswith("urn:")]
    assert plan.provenance is not None
    assert plan.provenance["target"] == [{"reference": held[stump.key].ref}]


def test_a_withdrawal_is_written_only_over_an_estimate_held() -> None:
    # The estimate's key, with no band now: never created, updated in place over the one held.
    items = planned(load_tables())
    risk = next(p for p in items if p.what == "risk operator_cto")
    withdrawal = replace(risk, body={**risk.body, "status": "amended"}, digest="no-estimate")
    withdrawal = replace(withdrawal, only_if_held=True)
    items = [withdrawal if p is risk else p for p in items]
    held = {p.key: Held(f"{p.resource_type}/id{i}", "2", p.digest) for i, p in enumerate(items)}

    absent = plan_writes(items, {k: v for k, v in held.items() if k != risk.key}, CTX)
    assert risk.key not in {s.planned.key for s in absent.steps}
    assert absent.provenance is None  # nothing else changed: nothing written

    held[risk.key] = Held("RiskAssessment/r1", "2", risk.digest)  # the estimate saved before
    plan = plan_writes(items, held, CTX)
    assert [s.label for s in plan.writes] == ["RiskAssessment/r1 (risk operator_cto)"]
    entry = transaction(plan)["entry"][0]
    assert entry["request"] == {"method": "PUT", "url": "RiskAssessment/r1", "ifMatch": 'W/"2"'}
    assert plan.provenance is not None
    assert plan.provenance["target"] == [{"reference": "RiskAssessment/r1"}]

    held[risk.key] = Held("RiskAssessment/r1", "3", "no-estimate")  # withdrawn already
    assert plan_writes(items, held, CTX).writes == ()


def test_each_write_names_its_save_and_a_lost_provenance_is_rebuilt_from_the_held() -> None:
    items = planned(load_tables())
    plan = plan_writes(items, {}, CTX)
    assert plan.save is not None
    assert plan.provenance is not None
    assert plan.provenance["meta"]["tag"] == [{"system": SAVE_SYSTEM, "code": plan.save}]
    for step in plan.writes:
        assert {"url": SAVE_EXTENSION, "valueString": plan.save} in step.planned.body["extension"]
    # The digest is the content's: naming the save changes nothing a later save compares.
    assert [s.planned.digest for s in plan.writes] == [p.digest for p in items]

    # Held as that save wrote them (a system write: no performer), its Provenance lost.
    held = {
        p.key: Held(f"{p.resource_type}/id{i}", "1", p.digest, "save-1", None)
        for i, p in enumerate(items)
    }
    again = plan_writes(items, held, CTX)
    assert saves_named(again) == ["save-1"]
    assert lost_provenances(again, ["save-1"], CTX) == []
    (lost,) = lost_provenances(again, [], CTX)
    validate_json(lost)
    assert {t["reference"] for t in lost["target"]} == {h.ref for h in held.values()}
    assert lost["meta"]["tag"] == [{"system": SAVE_SYSTEM, "code": "save-1"}]
    # The author is who saved then (none: the software), not who saves now.
    assert [a["type"]["coding"][0]["code"] for a in lost["agent"]] == ["author"]
    assert lost["agent"][0]["who"]["type"] == "Device"
