"""The operator's career search: the URL it sends, its caps, the HTTP 400 fallback, a server that
trimmed or ignored the filter, and the same filtered history from the REST, prefetch and file sources.

respx injects the faults (a 400, a trimmed answer); the real server is in
tests/integration/test_operator_career.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import respx

from cds.mapping.codes import CPT, HCPCS, SNOMED
from cds.mapping.operator import career_codes, history_planner
from cds.mapping.record_inputs import map_record
from cds.mapping.tables import MappingTables, load_tables
from cds.sources.fhir import FetchLimits, FhirRestSource
from cds.sources.files import FileSource
from cds.sources.prefetch import PrefetchSource
from cds.sources.reasons import Problem
from cds.sources.record import (
    Fetched,
    PatientRecord,
    RecordRequest,
    RecordSource,
    read_record,
)
from cds.sources.resources import ServiceRequest
from cds.sources.searches import (
    CAREER_CAPS,
    CAREER_ELEMENTS,
    Caps,
    HistoryFilter,
    Search,
    career_search,
    split_unescaped,
    unescape,
    within,
)
from tests.mapping.fhir import SUCCESS, order, patient, procedure

BASE = "https://fhir.example.org/r4"
OP = "dr1"
FAST = FetchLimits(timeout=1.0, deadline=5.0, retries=0, backoff=0.01)
ORDER_DAY = date(2026, 10, 1)
TODAY = date(2026, 11, 25)
SUBSETTED_TAG = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
}


@pytest.fixture(scope="module")
def tables() -> MappingTables:
    return load_tables()


def params(path: str) -> dict[str, str]:
    return dict(parse_qsl(path.partition("?")[2]))


def cto(i: int, when: str | None = "2025-03-01", code: str = "92943", **kw: Any) -> dict[str, Any]:
    return procedure(f"h{i}", CPT, code, when=when, performer=OP, pid="other", **kw)


def bundle(resources: Sequence[Mapping[str, object]], next_url: str | None = None) -> Any:
    page: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources],
    }
    if next_url:
        page["link"] = [{"relation": "next", "url": next_url}]
    return page


# --- the URL ------------------------------------------------------------------------------------


PREFIX_ROW = (
    "id,concept,resource,element,system,code,match,meaning,evidence,verified,enabled,comment\n"
    "site.pcs,cto_pci,Procedure,code,http://www.cms.gov/Medicare/Coding/ICD10,0270,prefix,"
    "true,claim,V,true,site row\n"
)


def test_career_codes_are_the_cto_pci_rows_in_every_spelling(tables: MappingTables) -> None:
    codes = career_codes(tables)
    assert (CPT, "92943") in codes
    assert ("urn:oid:2.16.840.1.113883.6.12", "92943") in codes  # CPT's OID
    assert (HCPCS, "C9607") in codes
    assert ("urn:oid:2.16.840.1.113883.6.285", "C9608") in codes
    assert (SNOMED, "713617008") in codes
    assert ("urn:oid:2.16.840.1.113883.6.96", "713617008") in codes
    assert ("http://snomed.info/sct/", "713617008") in codes
    assert len(codes) == len(set(codes))


def test_the_planner_scans_the_tables_once_per_tables(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cds.mapping.operator as operator

    scans: list[MappingTables] = []

    def counted(t: MappingTables) -> tuple[tuple[str, str], ...]:
        scans.append(t)
        return career_codes(t)

    monkeypatch.setattr(operator, "career_codes", counted)
    fresh = load_tables()  # a new MappingTables: its own derivations
    first = history_planner(fresh, TODAY)(None).codes
    assert history_planner(fresh, TODAY)(None).codes is first  # kept, not scanned again
    assert scans == [fresh]
    assert first == career_codes(fresh)
    (tmp_path / "codes.csv").write_text(PREFIX_ROW)
    other = load_tables(tmp_path)  # another site's tables: scanned for themselves
    assert history_planner(other, TODAY)(None).codes == ()  # (a prefix row: no code filter)
    assert scans == [fresh, other]


def test_a_prefix_row_drops_the_code_filter(tmp_path: Any) -> None:
    (tmp_path / "codes.csv").write_text(PREFIX_ROW)
    assert career_codes(load_tables(tmp_path)) == ()


def test_the_search_names_performer_date_codes_elements_and_page_size(
    tables: MappingTables,
) -> None:
    plan = history_planner(tables, TODAY)(ServiceRequest.model_validate(order(when="2026-10-01")))
    assert plan.before == date(2026, 10, 3)  # order date + 2 days
    search = career_search(OP, plan)
    assert search.path.startswith("Procedure?")
    got = params(search.path)
    assert got["performer"] == f"Practitioner/{OP}"
    assert got["date"] == "lt2026-10-03"
    assert got["_elements"] == CAREER_ELEMENTS
    assert "performedDateTime" in got["_elements"].split(",")  # sekmet 0.1.1 needs it named
    assert got["_count"] == "1000"
    tokens = split_unescaped(got["code"], ",")
    assert f"{CPT}|92943" in tokens
    assert "urn:oid:2.16.840.1.113883.6.12|92943" in tokens
    assert search.caps == CAREER_CAPS
    assert search.fallback is not None
    assert params(search.fallback.path) == {"performer": f"Practitioner/{OP}", "_count": "100"}


def test_no_order_yet_means_no_date_bound(tables: MappingTables) -> None:
    plan = history_planner(tables, TODAY)(None)
    assert plan.before is None
    assert "date" not in params(career_search(OP, plan).path)


def test_separators_in_a_code_are_escaped() -> None:
    search = career_search(OP, HistoryFilter(codes=(("urn:x", "a,b|c"),)))
    assert split_unescaped(params(search.path)["code"], ",") == ["urn:x|a\\,b\\|c"]
    system, code = split_unescaped("urn:x|a\\,b\\|c", "|")
    assert (unescape(system), unescape(code)) == ("urn:x", "a,b|c")
    coded = cto(1) | {"code": {"coding": [{"system": "urn:x", "code": "a,b|c"}]}}
    assert within(search, coded) is True
    assert within(search, cto(1)) is False


# --- the local filter ---------------------------------------------------------------------------


FILTERED = career_search(OP, HistoryFilter(((CPT, "92943"),), date(2026, 10, 3)))


def trimmed(resource: dict[str, Any], *drop: str) -> dict[str, Any]:
    out = {k: v for k, v in resource.items() if k not in drop}
    out["meta"] = {"tag": [SUBSETTED_TAG]}
    return out


@pytest.mark.parametrize(
    ("resource", "verdict"),
    [
        (cto(1), True),
        (cto(2, when="2026-10-02"), True),  # within the 2-day margin: the mapping re-checks
        (cto(3, when="2026-10-03"), False),  # on the bound
        (cto(4, code="92944"), False),  # another code
        (cto(5, when=None), False),  # undated and whole: truly undated
        (trimmed(cto(6), "performedDateTime"), None),  # trimmed: the server's doing?
        (trimmed(cto(7), "status"), None),
        (trimmed(cto(8), "code"), None),
        (trimmed(cto(9, code="92944"), "performedDateTime"), False),  # not a CTO-PCI anyway
        (trimmed(cto(10)), True),
        ({**cto(11, when=None), "performedPeriod": {"start": "2026-09-01"}}, True),
        ({**cto(12, when=None), "performedPeriod": {"start": "2026-10-05"}}, False),
        # A date there but unreadable passes, for the parse to report (it used to be dropped: the
        # operator's history silently one case short).
        (cto(13, when="not a date"), True),
        (cto(13, when="2026-02-30"), True),
        (cto(13, when="2026-02-30", code="92944"), False),  # not a CTO-PCI anyway
        ({**cto(13, when=None), "performedDateTime": 20260101}, True),
        ({**cto(13, when=None), "performedPeriod": "2026-01-01"}, True),
        ({**cto(13, when=None), "performedPeriod": {"start": "soon"}}, True),
        ({**cto(13, when=None), "performedPeriod": {"end": "2026-01-01"}}, False),  # no start
        # Not FHIR's form, though `int` reads a day in them: after the bound they were dropped.
        (cto(13, when="２０２６-12-01"), True),
        (cto(13, when="2026/12/01"), True),
        ({**cto(13, when=None), "performedPeriod": {"start": "２０２６-12-01"}}, True),
        # Malformed codes pass, for the parse to report (TypeError before: unhashable dict).
        ({**cto(14), "code": {"coding": [{"system": CPT, "code": {"x": 1}}]}}, True),
        ({**cto(15), "code": {"coding": [{"system": ["x"], "code": "92943"}]}}, True),
        ({**cto(16), "code": {"coding": ["92943"]}}, True),
        ({**cto(17), "code": {"coding": {"code": "92943"}}}, True),
        ({**cto(18), "code": "92943"}, True),
        ({**cto(19), "code": {"text": "CTO PCI"}}, False),  # well formed, no coding: no match
    ],
)
def test_within_applies_code_and_date_as_a_server_would(
    resource: dict[str, Any], verdict: bool | None
) -> None:
    assert within(FILTERED, resource) is verdict


# --- REST: caps, 400, trimmed answers -----------------------------------------------------------


@pytest.fixture
def server() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


def paged(resources: list[dict[str, Any]], size: int) -> Any:
    """A side effect serving `resources` in pages of `size` through `_page` next links."""

    def answer(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("_page", "0"))
        chunk = resources[page * size : (page + 1) * size]
        more = (page + 1) * size < len(resources)
        query = str(request.url.params.set("_page", str(page + 1)))
        return httpx.Response(
            200, json=bundle(chunk, f"{BASE}/Procedure?{query}" if more else None)
        )

    return answer


def rest_fetch(searches: Sequence[Search], limits: FetchLimits = FAST) -> dict[str, Fetched]:
    async def go() -> dict[str, Fetched]:
        async with httpx.AsyncClient() as client:
            return await FhirRestSource(BASE, client, limits=limits).fetch(searches)

    return asyncio.run(go())


def test_a_career_past_the_default_caps_is_read_whole(server: respx.MockRouter) -> None:
    history = [cto(i) for i in range(2500)]
    route = server.get("/Procedure").mock(side_effect=paged(history, 1000))
    result = rest_fetch([FILTERED])["operator_procedures"]
    assert result.complete
    assert result.exhaustive
    assert len(result.resources) == 2500  # the default cap of 1,000 would have cut it
    assert route.call_count == 3


def test_the_career_caps_truncate(server: respx.MockRouter) -> None:
    server.get("/Procedure").mock(side_effect=paged([cto(i) for i in range(50)], 10))
    small = Search(FILTERED.key, FILTERED.path, "Procedure", caps=Caps(25, 120, 10**9))
    result = rest_fetch([small])["operator_procedures"]
    assert result.truncated
    assert result.problem is Problem.TRUNCATED
    assert len(result.resources) == 25
    by_bytes = Search(FILTERED.key, FILTERED.path, "Procedure", caps=Caps(10**6, 120, 2000))
    result = rest_fetch([by_bytes])["operator_procedures"]
    assert result.truncated
    assert 10 <= len(result.resources) < 50


def test_http_400_falls_back_to_the_plain_search(server: respx.MockRouter) -> None:
    everything = [cto(1), cto(2, code="92920"), cto(3, when="2026-12-01")]

    def answer(request: httpx.Request) -> httpx.Response:
        if "code" in request.url.params:
            outcome = {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "not-supported", "diagnostics": "no"}],
            }
            return httpx.Response(400, json=outcome)
        return httpx.Response(200, json=bundle(everything))

    route = server.get("/Procedure", params={"performer": f"Practitioner/{OP}"}).mock(
        side_effect=answer
    )
    record = rest_read(server)
    assert route.call_count == 2
    assert "code" not in route.calls[1].request.url.params  # the plain search
    assert record.complete("operator_procedures")
    assert [p.id for p in record.operator_procedures] == ["h1"]  # filtered as asked
    assert record.filtered == {"operator_procedures": 2}


def test_http_400_without_a_fallback_is_an_error(server: respx.MockRouter) -> None:
    server.get("/Procedure").respond(400)
    bare = Search(FILTERED.key, FILTERED.path, "Procedure", caps=CAREER_CAPS)
    result = rest_fetch([bare])["operator_procedures"]
    assert result.error is not None
    assert not result.complete


def test_a_server_that_ignored_the_filter_is_filtered_here(server: respx.MockRouter) -> None:
    # Trimmed (SUBSETTED) but with everything the filter needs: a superset, filtered locally.
    superset = [trimmed(cto(1)), trimmed(cto(2, code="92920")), trimmed(cto(3, when="2027-01-01"))]
    server.get("/Procedure", params={"performer": f"Practitioner/{OP}"}).respond(
        json=bundle(superset)
    )
    record = rest_read(server)
    assert record.complete("operator_procedures")
    assert [p.id for p in record.operator_procedures] == ["h1"]


def test_a_malformed_code_in_a_history_makes_it_incomplete_not_an_error(
    server: respx.MockRouter,
) -> None:
    broken = {**cto(2), "code": {"coding": [{"system": CPT, "code": {"x": 1}}]}}
    server.get("/Procedure", params={"performer": f"Practitioner/{OP}"}).respond(
        json=bundle([cto(1), broken])
    )
    record = rest_read(server)
    assert record.why["operator_procedures"] is Problem.MALFORMED
    assert "Procedure/h2" in record.incomplete["operator_procedures"]


def test_a_trimmed_answer_without_the_dates_is_incomplete(server: respx.MockRouter) -> None:
    # What sekmet 0.1.1 does when `_elements` names only `performed`: the dates are gone.
    server.get("/Procedure", params={"performer": f"Practitioner/{OP}"}).respond(
        json=bundle([trimmed(cto(1), "performedDateTime"), trimmed(cto(2))])
    )
    record = rest_read(server)
    assert record.why["operator_procedures"] is Problem.INCOMPLETE
    assert "trimmed" in record.incomplete["operator_procedures"]


def rest_read(server: respx.MockRouter, day: date = ORDER_DAY) -> PatientRecord:
    """read_record over the mocked server; what the test did not route answers an empty page."""
    server.get(path__regex=r".*").respond(json=bundle([]))

    async def go() -> PatientRecord:
        async with httpx.AsyncClient() as client:
            return await read_operator(FhirRestSource(BASE, client, limits=FAST), day)

    return asyncio.run(go())


async def read_operator(source: RecordSource, day: date) -> PatientRecord:
    tables = load_tables()
    request = RecordRequest(patient_id="p1", order=order(when=day.isoformat()), operator_id=OP)
    return await read_record(source, request, None, history_planner(tables, TODAY))


# --- the same history from every source ---------------------------------------------------------


def career() -> list[dict[str, Any]]:
    return [
        cto(1, when="2024-05-01", outcome=SUCCESS),
        cto(2, when="2026-09-30", outcome=SUCCESS),
        cto(3, when="2026-10-02"),  # after the order, in the margin: the mapping drops it
        cto(4, when="2026-11-01"),  # after the bound
        cto(5, code="92920"),  # a plain PCI
        procedure("x1", CPT, "92943", when="2025-01-01", performer="dr2", pid="other"),
    ]


def test_file_prefetch_and_rest_give_the_same_history(server: respx.MockRouter) -> None:
    resources = [patient(), *career()]
    from_file = asyncio.run(read_operator(FileSource(resources), ORDER_DAY))
    mine = [r for r in career() if r["id"] != "x1"]
    broad = {
        "operator_procedures": bundle(mine),  # a template without code or date: a superset
        "patient": patient(),
    }
    from_prefetch = asyncio.run(read_operator(PrefetchSource(broad), ORDER_DAY))
    server.get("/Procedure", params={"performer": f"Practitioner/{OP}"}).respond(json=bundle(mine))
    from_rest = rest_read(server)
    for record in (from_file, from_prefetch, from_rest):
        assert [p.id for p in record.operator_procedures] == ["h1", "h2", "h3"], record
        assert record.complete("operator_procedures")
    tables = load_tables()
    values = {
        name: [map_record(r, tables, TODAY).inputs[name].value for r in (from_file, from_rest)]
        for name in ("operator_annual_cto_volume", "operator_last_year_success_rate")
    }
    assert values["operator_last_year_success_rate"] == [1.0, 1.0]
    assert values["operator_annual_cto_volume"] == [1.0, 1.0]  # 2 CTO-PCIs over 2 years


@pytest.mark.parametrize("when", ["2026-02-30", "last spring", "２０２６-09-01", "２０２６-12-01"])
def test_a_case_whose_date_cannot_be_read_leaves_the_history_unknown_not_short(
    server: respx.MockRouter, when: str
) -> None:
    # A server that kept a bad date (or a file export) answers it; the date filter cannot place it,
    # so dropping it would count the operator's cases one short without a word.
    mine = [r for r in career() if r["id"] != "x1"] + [cto(6, when=when)]
    server.get("/Procedure", params={"performer": f"Practitioner/{OP}"}).respond(json=bundle(mine))
    from_rest = rest_read(server)
    from_file = asyncio.run(read_operator(FileSource([patient(), *mine]), ORDER_DAY))
    tables = load_tables()
    for record in (from_rest, from_file):
        assert record.why["operator_procedures"] is Problem.MALFORMED, record
        assert "Procedure/h6" in record.incomplete["operator_procedures"]
        inputs = map_record(record, tables, TODAY).inputs
        assert inputs["operator_annual_cto_volume"].value is None
        assert inputs["operator_last_year_success_rate"].value is None


def test_the_file_source_evaluates_code_and_date() -> None:
    source = FileSource(career())
    result = source.answer(FILTERED)
    assert result.error is None
    assert [r["id"] for r in result.resources] == ["h1", "h2", "h3"]


def test_a_prefetched_career_keeps_the_career_cap(tables: MappingTables) -> None:
    history = [cto(i) for i in range(1500)]
    prefetch = {"operator_procedures": bundle(history)}
    got = asyncio.run(PrefetchSource(prefetch).fetch([FILTERED]))["operator_procedures"]
    assert got.complete
    assert len(got.resources) == 1500  # past the 1,000 of other searches
    small = Search(FILTERED.key, FILTERED.path, "Procedure", caps=Caps(1200, 120, 10**9))
    got = asyncio.run(PrefetchSource(prefetch).fetch([small]))["operator_procedures"]
    assert got.truncated
    assert len(got.resources) == 1200


def test_a_paginated_prefetched_career_is_finished_under_the_career_caps(
    server: respx.MockRouter,
) -> None:
    history = [cto(i) for i in range(1500)]
    server.get("/Procedure").mock(side_effect=paged(history, 500))
    first = bundle(history[:500], f"{BASE}/Procedure?performer=Practitioner/{OP}&_page=1")

    async def go() -> Fetched:
        async with httpx.AsyncClient() as client:
            rest = FhirRestSource(BASE, client, limits=FAST)
            source = PrefetchSource({"operator_procedures": first}, rest)
            return (await source.fetch([FILTERED]))["operator_procedures"]

    got = asyncio.run(go())
    assert got.complete
    assert len(got.resources) == 1500  # past the 1,000 of other searches
