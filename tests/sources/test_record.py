"""assemble/read_record: de-duplication, results that do not answer the search, large rounds."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from cds.sources.reasons import Problem
from cds.sources.record import (
    THREAD_ABOVE,
    Fetched,
    PatientRecord,
    RecordRequest,
    assemble,
    read_record,
)
from cds.sources.searches import Search

PID = "pat-1"


def condition(cid: str, patient: str = PID) -> dict[str, object]:
    return {"resourceType": "Condition", "id": cid, "subject": {"reference": f"Patient/{patient}"}}


def test_duplicates_are_placed_once_and_id_less_resources_kept() -> None:
    anonymous = {"resourceType": "Condition", "subject": {"reference": f"Patient/{PID}"}}
    raw = (condition("c1"), condition("c2"), condition("c1"), anonymous, anonymous)
    record = assemble({"conditions": Fetched("conditions", raw)}, PatientRecord(patient_id=PID))
    assert [c.id for c in record.conditions] == ["c1", "c2", None, None]
    assert record.complete("conditions")


def test_another_patients_resource_makes_the_search_incomplete() -> None:
    raw = (condition("c1"), condition("c9", "someone-else"))
    record = assemble({"conditions": Fetched("conditions", raw)}, PatientRecord(patient_id=PID))
    assert [c.id for c in record.conditions] == ["c1"]
    assert record.ignored == {"conditions": 1}
    assert record.why["conditions"] is Problem.INCOMPLETE
    assert record.incomplete["conditions"] == (
        "conditions: incomplete search result (1 result(s) did not match the search)"
    )


def test_another_type_makes_the_search_incomplete() -> None:
    raw = ({"resourceType": "Procedure", "id": "p1", "subject": {"reference": f"Patient/{PID}"}},)
    record = assemble({"conditions": Fetched("conditions", raw)}, PatientRecord(patient_id=PID))
    assert record.conditions == []
    assert record.procedures == []
    assert not record.complete("conditions")


def test_the_first_failure_of_a_search_is_kept_with_its_kind() -> None:
    fetched = Fetched(
        "conditions",
        (condition("c9", "x"),),
        error="conditions: not read in time",
        problem=Problem.TIMEOUT,
    )
    record = assemble({"conditions": fetched}, PatientRecord(patient_id=PID))
    assert record.incomplete["conditions"] == "conditions: not read in time"
    assert record.why["conditions"] is Problem.TIMEOUT


class Large:
    """A source answering the Condition search with more resources than parse on the loop."""

    def __init__(self, count: int) -> None:
        self.count = count

    async def fetch(self, searches: Sequence[Search]) -> dict[str, Fetched]:
        found: dict[str, Fetched] = {}
        for search in searches:
            resources: tuple[Mapping[str, object], ...] = ()
            if search.key == "patient":
                resources = ({"resourceType": "Patient", "id": PID},)
            elif search.key == "conditions":
                resources = tuple(condition(f"c{i}") for i in range(self.count))
            found[search.key] = Fetched(search.key, resources)
        return found


def test_a_large_round_is_assembled_the_same_off_the_loop() -> None:
    count = THREAD_ABOVE * 3
    record = asyncio.run(read_record(Large(count), RecordRequest(PID)))
    assert len(record.conditions) == count
    assert record.patient is not None
    assert record.patient.id == PID
    assert record.incomplete == {}


def test_strays_in_an_exhaustive_read_are_filtered_not_incomplete() -> None:
    """A server that ignored a parameter sent everything: the matching subset is the answer."""
    raw = (condition("c1"), condition("c9", "someone-else"))
    fetched = Fetched("conditions", raw, exhaustive=True)
    record = assemble({"conditions": fetched}, PatientRecord(patient_id=PID))
    assert [c.id for c in record.conditions] == ["c1"]
    assert record.ignored == {"conditions": 1}  # a diagnostic for the integration engineer
    assert record.complete("conditions")
