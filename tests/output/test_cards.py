"""The Operator-CTO card (CH-15..CH-21, docs/spec/scores.md §1), checked with tests/harness.

Cards are built from real ScoredCases: cohort patients read through the file source, and hand-made
inputs for the edge cases (every band, unknown operator, everything unknown, hostile EHR text).
"""

from __future__ import annotations

import asyncio
import html
import re
import unicodedata
import uuid
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class  # the package default is R5
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

import cds.demo
from cds.mapping.case_labels import CaseLabels
from cds.mapping.tables import load_tables
from cds.output.card_detail import WORD_JOINER, escape_markdown, summary
from cds.output.cards import (
    OVERRIDE_REASONS,
    build_card,
)
from cds.output.wording import CAVEAT
from cds.pipeline import score_patient
from cds.scored_case import ScoredCase
from cds.sources.files import FileSource
from cds.sources.record import RecordRequest
from tests.harness.invariants import check_response
from tests.output.card_cases import (
    CARD_UUID,
    COHORT,
    DOCS,
    EXPERT,
    LAUNCH,
    OPERATOR_INPUTS,
    PAPER,
    TODAY,
    body_of,
    case_of,
    ctx,
    lesion,
)
from tests.scoring.cases import NOTHING_PRESENT


@pytest.fixture(scope="module")
def cohort() -> dict[str, ScoredCase]:
    source, tables = FileSource.from_path(COHORT), load_tables()

    async def run() -> list[tuple[ScoredCase, object]]:
        return await asyncio.gather(
            *(
                score_patient(
                    source, RecordRequest(patient_id=p, order_id=f"{p}-order"), tables, TODAY
                )
                for p in ("pt01", "pt04", "pt08", "pt23", "pt25")
            )
        )

    cases = asyncio.run(run())
    return {
        f"pt{n}": case for n, (case, _) in zip(("01", "04", "08", "23", "25"), cases, strict=True)
    }


# --- cards from the cohort --------------------------------------------------------------------


@pytest.mark.parametrize("patient", ["pt01", "pt04", "pt08", "pt23", "pt25"])
def test_cohort_cards_conform(cohort: dict[str, ScoredCase], patient: str) -> None:
    card = build_card(
        cohort[patient], ctx(patient_ref=f"Patient/{patient}", unread=["x: timed out"])
    )
    assert check_response(body_of(card)) == []
    assert len(card.summary) < 140
    assert card.uuid == CARD_UUID


@pytest.mark.parametrize(
    ("patient", "indicator", "referral"),
    [
        ("pt01", "info", False),  # easy with an expert operator
        ("pt04", "warning", False),  # easy or moderate: undetermined, not critical
        ("pt08", "warning", False),  # 0 to 8 with a newcomer: any band, so not certainly difficult
        ("pt23", "info", False),  # moderate is known: info
        ("pt25", "warning", False),  # almost nothing recorded: incomplete, not critical
    ],
)
def test_cohort_indicator_and_referral(
    cohort: dict[str, ScoredCase], patient: str, indicator: str, referral: bool
) -> None:
    card = build_card(cohort[patient], ctx())
    assert card.indicator == indicator
    assert bool(card.suggestions) is referral


def test_pt04_summary_and_detail(cohort: dict[str, ScoredCase]) -> None:
    card = build_card(cohort["pt04"], ctx())
    assert card.summary == (
        "Operator-CTO 0 to 3 (easy or moderate) — incomplete: 3 findings missing"
    )
    detail = card.detail or ""
    first = detail.splitlines()[0]
    assert first.startswith("**Target:** LAD CTO")
    assert "**Operator:** Dr. Irene Castellano (NPI 1384560276)" in first
    assert "Lesion points 4 to 7 (scale 0 to 9); operator adjustment -4" in detail
    # this operator meets all three criteria: no expert-operator line
    assert "all three experience criteria" not in detail
    assert (
        "| prior CABG grafting the target vessel (≥ 3 months) | yes | +1 | procedure history "
        in (detail)
    )
    assert "| occlusion length ≥ 20 mm | 25 mm | +1 | angiography " in detail
    assert "| **unknown** | 0 or +1 | no finding recorded" in detail
    assert "EHR procedure history" in detail
    assert "and 17 more" not in detail
    assert (
        "**Incomplete: 3 findings missing** — curvature, distal vessel disease, ostial location"
        in (detail)
    )


def test_pt01_summary_with_estimate(cohort: dict[str, ScoredCase]) -> None:
    assert build_card(cohort["pt01"], ctx()).summary == (
        "Operator-CTO -4 — easy: est. technical success 99% (102/103; 95% CI 95% to > 99%), "
        "small single-centre cohort"
    )


def test_detail_covers_every_section(cohort: dict[str, ScoredCase]) -> None:
    case = cohort["pt23"]
    detail = build_card(
        case, ctx(unread=["conditions (Condition search): timed out after 3.0 s"])
    ).detail
    assert detail is not None
    comparators = next(x for x in detail.splitlines() if x.startswith("**Comparators**"))
    for key, result in case.report.scores.items():
        if key != "operator_cto":
            assert f"{result.name} " in comparators
        assert result.citation in detail
        if result.url:
            assert f"doi:[{result.url.removeprefix('https://doi.org/')}]({result.url})" in detail
    assert "est. 35% technical failure of CTO-PCI" in comparators  # CASTLE: failure, not success
    assert "est. 7% major peri-procedural complication" in comparators  # 6.5 % rounds up
    assert "**inputs they use:** age " in comparators
    assert "88% technical success of CTO-PCI (21 of 24; 95% CI 69–96%)" in detail  # Wilson CI
    assert "Table 6 / Figure 1(b)" in detail
    assert CAVEAT in detail
    assert "conditions \\(Condition search\\): timed out after 3.0 s" in detail


# --- every band, unknown operator, everything unknown -----------------------------------------


@pytest.mark.parametrize(
    ("points", "band", "indicator"),
    [
        (0, "easy", "info"),
        (3, "moderate", "info"),
        (4, "difficult", "critical"),
        (6, "extremely difficult", "critical"),
    ],
)
def test_every_band(points: int, band: str, indicator: str) -> None:
    card = build_card(case_of(lesion(points)), ctx())
    assert card.indicator == indicator
    assert card.summary.startswith(f"Operator-CTO {points} — {band}: est. technical success")
    assert check_response(body_of(card)) == []


def test_summary_exact_for_difficult() -> None:
    card = build_card(case_of(lesion(4)), ctx())
    assert card.summary == (
        "Operator-CTO 4 — difficult: est. technical success 54% (7/13; 95% CI 29–77%), "
        "small single-centre cohort"
    )


def test_unknown_operator_leaves_the_band_undetermined() -> None:
    case = case_of(lesion(4, **dict.fromkeys(OPERATOR_INPUTS)))
    card = build_card(case, ctx())
    assert card.summary == (
        "Operator-CTO 0 to 4 (easy or moderate or difficult) — incomplete: 3 findings missing"
    )
    assert card.indicator == "warning"
    assert not card.suggestions  # difficult is possible, not certain


def test_critical_when_every_reachable_band_is_difficult_or_worse() -> None:
    card = build_card(case_of(lesion(5, distal_vessel_disease=None)), ctx())
    assert card.summary.startswith("Operator-CTO 4 to 5 (difficult or extremely difficult) — ")
    assert card.indicator == "critical"
    assert card.suggestions  # certain, and an expert operator would do better


def test_a_range_whose_middle_cannot_occur() -> None:
    # Only the -2 item is unknown: 2 or 4, never 3.
    card = build_card(case_of(lesion(4, operator_last_year_success_rate=None)), ctx())
    assert card.summary.startswith("Operator-CTO 2 or 4 (easy or difficult) — incomplete")
    assert "**Operator-CTO 2 or 4 points: easy or difficult**" in (card.detail or "")
    assert card.indicator == "warning"
    assert check_response(body_of(card)) == []


def test_everything_unknown() -> None:
    card = build_card(case_of(dict.fromkeys(NOTHING_PRESENT)), ctx(unread=["all: server down"]))
    assert card.indicator == "warning"
    assert card.summary.startswith("Operator-CTO -4 to 9 (any band) — incomplete: ")
    # Not "in time": a server that is down is not a timeout (cds/sources/reasons.py).
    assert card.summary.endswith("missing; some data could not be read")
    assert "**Not read completely**" in (card.detail or "")
    assert "in time" not in (card.detail or "")
    assert check_response(body_of(card)) == []


def test_summary_shortens_gracefully() -> None:
    result = case_of(lesion(4)).report.scores["operator_cto"]
    long = result.model_copy(update={"name": "Operator-CTO " + "x" * 60})
    text = summary(long, unread=True)
    assert len(text) < 140
    assert text.startswith(long.name)
    assert "54%" in text


# --- the referral suggestion ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "context", "offered"),
    [
        (lesion(4), {}, True),  # difficult → easy with an expert
        (lesion(0), {}, False),  # easy either way
        (lesion(8, **EXPERT), {}, False),  # the operator is an expert already
        (lesion(4), {"referral": False}, False),  # not allowed at this site
        (lesion(4), {"patient_ref": None}, False),  # no subject for the ServiceRequest
    ],
)
def test_referral_exactly_when_the_expert_band_is_better(
    values: dict[str, Any], context: dict[str, Any], offered: bool
) -> None:
    card = build_card(case_of(values), ctx(**context))
    assert bool(card.suggestions) is offered
    assert (card.selection_behavior == "any") is offered
    assert check_response(body_of(card)) == []


def test_referral_resource() -> None:
    card = build_card(case_of(lesion(4)), ctx())
    assert card.suggestions is not None
    (suggestion,) = card.suggestions
    assert suggestion.is_recommended is False
    assert suggestion.uuid == str(uuid.uuid5(uuid.UUID(CARD_UUID), "referral"))
    (action,) = suggestion.actions or []
    resource = action.resource or {}
    assert action.type == "create"
    assert resource["status"] == "draft"
    assert resource["intent"] == "proposal"
    assert resource["code"]["coding"][0]["code"] == "306206005"
    assert resource["subject"] == {"reference": "Patient/p1"}
    assert resource["supportingInfo"][0]["reference"] == "ServiceRequest/o1"
    assert "4 points, difficult" in resource["note"][0]["text"]
    assert "0 points, easy" in resource["note"][0]["text"]
    assert resource["reasonCode"][0]["text"] == (
        "Operator-CTO difficult with the recorded operator, easy with an experienced CTO operator"
    )
    get_fhir_model_class("ServiceRequest").model_validate(resource)


# --- links, source, override reasons, serialisation -------------------------------------------


def test_links_source_and_override_reasons(cohort: dict[str, ScoredCase]) -> None:
    body = body_of(build_card(cohort["pt04"], ctx()))["cards"][0]
    smart, paper = body["links"]
    assert smart == {
        "label": "Review inputs and complete findings",
        "url": LAUNCH,
        "type": "smart",
        "appContext": "h.eyJjYXNlIjoiYWJjIn0.c2ln",
    }
    assert paper["type"] == "absolute"
    assert paper["url"] == PAPER
    assert body["source"] == {
        "label": "Operator-CTO score (Xiao 2021)",
        "url": DOCS,
        "topic": {
            "system": "http://cto-cds.org/fhir/CodeSystem/cto-lesion",
            "code": "operator-cto-score",
            "display": "Operator-CTO score",
        },
    }
    assert [r["code"] for r in body["overrideReasons"]] == [code for code, _ in OVERRIDE_REASONS]
    assert all(r["display"] for r in body["overrideReasons"])


def test_smart_link_without_app_context(cohort: dict[str, ScoredCase]) -> None:
    body = body_of(build_card(cohort["pt04"], ctx(app_context=None)))
    assert "appContext" not in body["cards"][0]["links"][0]
    assert check_response(body) == []


# --- escaping EHR text (CH-21) ----------------------------------------------------------------

HOSTILE = [
    "<script>alert(1)</script>",
    "[x](javascript:alert(1))",
    "| col | umn |",
    "![img](http://evil)",
    "<img src=x onerror=alert(1)>",
    "**bold** _it_ `code` # head ~~del~~",
    "- item\n\n# Heading\n1. one",
    "&lt;b&gt; &amp; <!-- c -->",
    "\u202eevil\u0000",
]

_MD = MarkdownIt("commonmark", {"html": True}).enable("table")
"""Raw HTML passes through, as in the sandbox's rehype-raw rendering (CH-21)."""


def _rendered_text(markdown: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", _MD.renderInline(markdown)))


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("<script>alert(1)</script>", "&lt;script&gt;alert\\(1\\)&lt;/script&gt;"),
        ("[x](javascript:alert(1))", "\\[x\\]\\(javascript:alert\\(1\\)\\)"),
        ("| col |", "\\| col \\|"),
        ("![img](http://evil)", "\\!\\[img\\]\\(http:\u2060//evil\\)"),
        ("- a\nb", "\\- a b"),
        ("+ a", "\\+ a"),
        ("12. a", "12\\. a"),
        ("a & b > c", "a &amp; b &gt; c"),
        ("\u202eab\u0000", "ab"),
        ("angiography report 2026-09-30", "angiography report 2026-09-30"),  # nothing to escape
        ("a\t b\n", "a b"),  # ASCII with whitespace runs: the fast path collapses them too
        ("\u0661. one", "\u0661\\. one"),  # any Unicode decimal digit starts a list
        ("3 mm", "3 mm"),  # a digit without `.` or `)` starts none
        ("\u00e9t\u00e9 1.", "\u00e9t\u00e9 1."),  # not at the start: no list
    ],
)
def test_escape_markdown(text: str, escaped: str) -> None:
    assert escape_markdown(text) == escaped


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_escape_markdown_renders_as_the_same_plain_text(text: str) -> None:
    escaped = escape_markdown(text)
    rendered = _MD.renderInline(escaped)
    assert re.search(r"<(?!/?(?:p)\b)[A-Za-z/!]", rendered) is None  # no element but the paragraph
    words = (
        "".join(c for c in w if unicodedata.category(c) not in ("Cc", "Cf")) for w in text.split()
    )
    # The word joiners that break autolinks are the only addition, and they are invisible.
    assert _rendered_text(escaped).replace(WORD_JOINER, "") == " ".join(w for w in words if w)
    assert not _autolinks(_rendered_text(escaped))


# GFM extended autolinks as remark-gfm finds them in rendered text (mdast-util-gfm-autolink-literal)
# and cmark-gfm's autolink extension: scheme://, www., and e-mail addresses.
_GFM_AUTOLINK = re.compile(
    r"(?:https?|ftp)://[-.\w]|www\.[-\w]|[-.\w+]@[-\w]+\.[-\w]",
    re.IGNORECASE,
)


def _autolinks(text: str) -> list[str]:
    return _GFM_AUTOLINK.findall(text)


@pytest.mark.parametrize(
    "text",
    [
        "see https://evil.example/x now",
        "HTTP://EVIL.EXAMPLE",
        "ftp://files.example",
        "www.evil.example",
        "_www.evil.example_",
        "(www.evil.example)",
        "mail jane.doe@evil.example",
        "<jane@evil.example>",
        "<https://evil.example>",
        "mailto:jane@evil.example",
        "xmpp:jane@evil.example/res",
    ],
)
def test_gfm_autolinks_in_ehr_text_are_inert(text: str) -> None:
    assert _autolinks(text), "the oracle must see the autolink in the raw text"
    escaped = escape_markdown(text)
    rendered = _rendered_text(escaped)
    assert not _autolinks(rendered)
    assert "href" not in _MD.renderInline(escaped)
    assert rendered.replace(WORD_JOINER, "") == text


def test_hostile_ehr_text_is_inert_in_the_card() -> None:
    hostile = " ".join(HOSTILE)
    case = case_of(
        lesion(2, calcification=None), notes={"calcification": hostile, "stump": hostile}
    )
    mapping = case.mapping.model_copy(
        update={
            "operator": "Practitioner/<b>x</b>",
            "notes": [hostile],
            "order": "[o](javascript:1)",
            "labels": CaseLabels(
                target_site=hostile,
                order=hostile,
                order_date=hostile,
                operator_name=hostile,
                operator_npi=hostile,
                sources={"Observation/stump": hostile, "Observation/rentrop-grade": hostile},
            ),
        }
    )
    case = case.model_copy(update={"mapping": mapping})
    card = build_card(case, ctx(unread=HOSTILE))
    body = body_of(card)
    assert check_response(body) == []
    detail = card.detail or ""
    rendered = _MD.render(detail)
    assert "<script" not in rendered
    assert "<img" not in rendered
    assert "<b>x" not in rendered
    assert "<!--" not in rendered
    assert 'href="javascript' not in rendered
    assert "http://evil" not in " ".join(re.findall(r'(?:href|src)="([^"]*)"', rendered))
    # every row of the items table keeps its four cells: no injected `|`
    tokens = _MD.parse(detail)
    cells, rows = 0, []
    for token in tokens:
        if token.type == "tr_open":
            cells = 0
        elif token.type in ("td_open", "th_open"):
            cells += 1
        elif token.type == "tr_close":
            rows.append(cells)
    assert rows
    assert set(rows) == {4}
    assert "script&gt;alert\\(1\\)" in detail


def test_card_modules_are_pure() -> None:
    root = Path(cds.__file__).parent / "output"
    for name in ("cards.py", "card_detail.py"):
        text = (root / name).read_text()
        imports = set(re.findall(r"^(?:from|import) ([\w.]+)", text, re.MULTILINE))
        assert imports <= {
            "__future__",
            "re",
            "uuid",
            "unicodedata",
            "typing",
            "pydantic",
            "pydantic.alias_generators",
        } | {i for i in imports if i.startswith("cds.")}, name
        assert "today()" not in text
        assert ".now(" not in text


def test_override_reasons_and_topic_use_the_sites_local_system() -> None:
    site_system = "https://hospital.example/fhir/CodeSystem/cath-findings"
    body = body_of(build_card(case_of(lesion(4)), ctx(local_system=site_system)))
    card = body["cards"][0]
    assert {r["system"] for r in card["overrideReasons"]} == {site_system}
    assert card["source"]["topic"]["system"] == site_system
