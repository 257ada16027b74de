"""The card's text (pure): the one-line `summary` and the `detail` in plain GitHub-flavoured Markdown.

Written for a cardiologist reading it in five seconds at the moment of ordering (docs/spec/scores.md
§1, docs/spec/cds-hooks-smart.md §4 item 8): first what was scored (target, operator by name, order),
then the result (band and estimate), then why (lesion points and operator adjustment, the band with
an expert operator, the missing findings, the item table), then comparators, caveat and references.
A complete record fits in about 25 lines. Sources are named as a clinician would ("angiography
report 2026-08-20", "operator registry"): FHIR ids stay in the audit and the JSON output, never in
the card. Every percentage goes through `wording.percent`, so summary and detail round alike.
CH-16: summary < 140 characters. CH-21: no raw HTML, and every string taken from the EHR passes
through `escape_markdown`.
"""

from __future__ import annotations

import re
import unicodedata

from cds.cdshooks.response import SUMMARY_LIMIT
from cds.mapping.provenance import MappedInput
from cds.output.wording import (
    CAVEAT,
    EXPERT_OPERATOR,
    band_name,
    bands_text,
    count_text,
    estimate_text,
    group_scale,
    input_words,
    item_points,
    outcome_text,
    percent,
    points_text,
    range_text,
    result_points_text,
    short_estimate_text,
)
from cds.scored_case import ScoredCase
from cds.scoring.model import ItemGroup
from cds.scoring.result import ScoreResult
from cds.scoring.scores.operator_cto import OPERATOR_CTO

PRIMARY = OPERATOR_CTO.id

_BACKSLASHED = frozenset("\\`*_[]()#!|~")
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_ESCAPES = {ord(c): e for c, e in _ENTITIES.items()} | {ord(c): "\\" + c for c in _BACKSLASHED}
_ORDERED_MARKER = re.compile(r"^(\d+)([.)])")
WORD_JOINER = "\u2060"
"""Invisible, and not a word character: put inside `https://`, `www.` and before `@`, it stops a GFM
renderer from turning EHR text into a link, while the text still reads the same."""
# GFM extended autolinks: `scheme://` (http, https, ftp), `www.`, and e-mail addresses (bare, in
# `<...>`, after mailto: or xmpp:). Renderers find them in the text after escapes are resolved
# (remark-gfm searches text nodes), so a backslash cannot stop them; a joiner in the pattern does.
_AUTOLINK = (
    (re.compile(r"(?i)([a-z][a-z0-9+.-]*):(?=//)"), "\\1:" + WORD_JOINER),
    (re.compile(r"(?i)(www)\."), "\\1" + WORD_JOINER + "."),
    (re.compile("@"), WORD_JOINER + "@"),
)


def _visible(word: str) -> str:
    """`word` without control, format or surrogate characters; printable ASCII has none (the
    common case, checked in C instead of one category look-up per character)."""
    if word.isascii() and word.isprintable():
        return word
    return "".join(c for c in word if unicodedata.category(c) not in ("Cc", "Cf", "Cs"))


def escape_markdown(text: str) -> str:
    """EHR text made inert as GFM *and* as HTML, safe inside a table cell (CH-21).

    Whitespace runs (newlines included) become one space, so the text cannot start a block or break a
    table row; control and format characters (e.g. bidi overrides) and lone surrogates (not UTF-8:
    the response could not be encoded) are dropped; `&`, `<`, `>` become
    entities, so no tag or entity survives even where a renderer passes raw HTML; the other Markdown
    punctuation (backslash, backtick, `*`, `_`, `[`, `]`, `(`, `)`, `#`, `!`, `|`, `~`) is
    backslash-escaped, so no emphasis, code, link, image or table cell can be formed; a leading `-`,
    `+` or `1.` cannot start a list; a word joiner breaks every GFM autolink (`https://x`, `www.x`,
    `a@b.c`), so a URL or address in EHR text is shown, never linked.
    """
    if text.isascii() and text.isprintable():  # the common case: nothing to drop, checked in C
        flat = " ".join(text.split())
    else:
        flat = " ".join(word for word in map(_visible, text.split()) if word)
    escaped = flat.translate(_ESCAPES)  # one pass in C: entities and backslashes
    if "://" in escaped or "@" in escaped or "www." in escaped.lower():  # else no autolink to break
        for pattern, replacement in _AUTOLINK:
            escaped = pattern.sub(replacement, escaped)
    first = escaped[:1]
    if first in ("-", "+"):
        return "\\" + escaped
    if first.isdigit():  # every `\d` is a digit to `isdigit`: the regex only where it can match
        return _ORDERED_MARKER.sub(r"\1\\\2", escaped, count=1)
    return escaped


def value_text(value: object, name: str = "") -> str:
    """An input value for a person: yes/no, 25 mm, 90%, moderate; **unknown** when not known."""
    if value is None:
        return "**unknown**"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        if name.endswith("_rate"):
            return percent(value)
        return f"{value:g}" + (" mm" if name.endswith("_mm") else "")
    return escape_markdown(str(value).replace("_", " "))


_RESOURCE_TYPES = (
    "Patient|PractitionerRole|Practitioner|Organization|Encounter|Condition|Procedure|Observation|"
    "DiagnosticReport|ServiceRequest|ProcedureRequest|MedicationRequest|Location|Device"
)
_REFERENCE = re.compile(rf"\b(?:{_RESOURCE_TYPES})/[A-Za-z0-9\-.]{{1,64}}")
"""A FHIR relative reference (`Procedure/pt05-proc-1`): never shown to a clinician."""


def clinical_note(note: str, labels: dict[str, str]) -> str:
    """A mapping note with each FHIR reference replaced by where a clinician would find it."""
    text = _REFERENCE.sub(lambda m: labels.get(m.group(0), "the record"), note)
    # The history is a sample of the operator's work: a ratio drawn from it may be off either way.
    return text.replace("may be incomplete: a lower bound", "may be incomplete")


def where_text(mapped: MappedInput, labels: dict[str, str]) -> str:
    """The distinct places an input came from, in a clinician's words ('angiography report …')."""
    places = list(dict.fromkeys(labels.get(ref, "the record") for ref in mapped.sources))
    if len(places) > MAX_PLACES:
        places = [*places[:MAX_PLACES], f"{len(places) - MAX_PLACES} more"]
    return ", ".join(places)


def source_text(mapped: MappedInput | None, labels: dict[str, str], operator: bool = False) -> str:
    """Where an input came from and how good the evidence is, escaped for a table cell.

    Operator data is about the operator, so it carries no patient/lesion evidence label; a
    patient-level code or a claim standing in for a lesion finding says so.
    """
    if mapped is None:
        return "not read"
    where = where_text(mapped, labels)
    if mapped.evidence == "not documented":
        lead = "not documented"
    elif mapped.evidence == "unknown":
        lead = where if where or mapped.note else "not recorded"
    elif operator or mapped.evidence == "lesion":
        lead = where
    else:
        lead = f"{EVIDENCE_WORDS[mapped.evidence]}: {where}" if where else mapped.evidence
    parts = [lead] if lead else []
    if mapped.note:
        parts.append(clinical_note(mapped.note, labels))
    return escape_markdown("; ".join(parts))


MAX_PLACES = 2
EVIDENCE_WORDS = {"patient": "patient-level record", "claim": "billing claim"}


def items_table(case: ScoredCase) -> list[str]:
    """Each item: the input value (yes/no/**unknown** for a yes-no finding), points, source."""
    result = case.report.scores[PRIMARY]
    labels = case.mapping.labels.sources
    lines = ["| item | value | points | source |", "|---|---|---:|---|"]
    for item in result.items:
        mapped = case.mapping.inputs.get(item.input)
        operator = item.group == "operator"
        cells = [
            item.label,
            value_text(item.value, item.input),
            item_points(item),
            source_text(mapped, labels, operator),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def target_line(case: ScoredCase) -> str:
    """'**Target:** RCA CTO (Proximal right coronary artery) · **Operator:** … · **Order:** …'."""
    labels = case.mapping.labels
    vessel = case.mapping.inputs.get("target_vessel")
    site = f" ({escape_markdown(labels.target_site)})" if labels.target_site else ""
    if vessel is not None and vessel.value is not None:
        target = f"{escape_markdown(str(vessel.value))} CTO{site}"
    else:
        target = f"vessel **unknown**{site}"
    if labels.operator_name:
        operator = escape_markdown(labels.operator_name)
        if labels.operator_npi:
            operator += f" (NPI {escape_markdown(labels.operator_npi)})"
    elif labels.operator_npi:
        operator = f"NPI {escape_markdown(labels.operator_npi)}"
    else:
        operator = "**not identified**" if case.mapping.operator is None else "name not recorded"
    if case.mapping.order is None:
        order = "**not identified**"
    else:
        order = escape_markdown(labels.order or "CTO-PCI")
        if labels.order_date:
            order += f", {escape_markdown(labels.order_date)}"
    return f"**Target:** {target} · **Operator:** {operator} · **Order:** {order}"


def headline(result: ScoreResult) -> str:
    """'**Operator-CTO 4 points: difficult** — est. 54% technical success (7 of 13; …), note'."""
    head = f"**{result.name} {result_points_text(result)} points: {bands_text(result)}**"
    if result.estimate is not None:
        estimate = estimate_text(result.estimate, result.outcome_label)
        return f"{head} — est. {estimate}, {result.estimate.note}"
    return (
        f"{head} — predicts {result.outcome_label}; no estimate while the band is undetermined "
        "(the published rates are per band)"
    )


def _subtotal(result: ScoreResult, group: ItemGroup, label: str) -> str | None:
    sub = result.groups.get(group)
    if sub is None:
        return None
    points = points_text(sub.points, sub.min, sub.max)
    return f"{label} {points} ({group_scale(OPERATOR_CTO, group)})"


def expert_already(result: ScoreResult) -> bool:
    """This operator is known to meet every experience criterion."""
    return all(item.present is True for item in result.items if item.group == "operator")


def primary_lines(case: ScoredCase) -> list[str]:
    """Lesion points and operator adjustment apart, then the band with an expert operator."""
    result = case.report.scores[PRIMARY]
    parts = [
        part
        for part in (
            _subtotal(result, "lesion", "lesion points"),
            _subtotal(result, "operator", "operator adjustment"),
        )
        if part is not None
    ]
    lines = [f"- {'; '.join(parts).capitalize()}"] if parts else []
    expert = result.scenarios.get("expert_operator")
    if expert is not None and not expert_already(result):
        lines.append(f"- With {EXPERT_OPERATOR}: {range_text(expert)}")
    return lines


def missing_lines(result: ScoreResult, inputs: dict[str, MappedInput]) -> list[str]:
    """The findings the range is waiting for, in clinical words, with why each is unknown."""
    if not result.missing:
        return []
    reasons: dict[str, list[str]] = {}
    for name in result.missing:
        mapped = inputs.get(name)
        why = mapped.note if mapped and mapped.note else "not found"
        reasons.setdefault(why, []).append(input_words(name))
    detail = "; ".join(
        f"{', '.join(names)} ({escape_markdown(clinical_note(why, {}))})"
        for why, names in reasons.items()
    )
    return [
        f"- **Incomplete: {count_text(len(result.missing), 'finding')} missing** — {detail}; "
        "record them in the review app"
    ]


def comparator_text(result: ScoreResult) -> str:
    """'J-CTO 0 (easy; est. 88% guidewire crossing within 30 minutes)': points, band, estimate."""
    facts = [bands_text(result)] if result.bands else []
    if result.estimate is not None:
        facts.append(f"est. {percent(result.estimate.proportion)} {result.outcome_label}")
    else:
        facts.append(f"predicts {result.outcome_label}")
    if result.missing:
        facts.append(f"{count_text(len(result.missing), 'input')} missing")
    return f"{result.name} {result_points_text(result)} ({'; '.join(facts)})"


CHECKABLE = ("age_years", "prior_mi", "prior_cabg", "target_vessel")
"""Comparator inputs a clinician can check at a glance (the lesion findings are in the table)."""


def comparator_lines(case: ScoredCase) -> list[str]:
    """All comparators on one line, then the patient inputs they use that a clinician can check."""
    others = [r for key, r in case.report.scores.items() if key != PRIMARY]
    if not others:
        return []
    checked = " · ".join(
        f"{input_words(name)} {value_text(case.mapping.inputs[name].value, name)}"
        for name in CHECKABLE
        if name in case.mapping.inputs
    )
    return [
        "**Comparators** (each predicts its own outcome; not comparable): "
        + " · ".join(comparator_text(r) for r in others)
        + f" — **inputs they use:** {checked}"
    ]


def references(case: ScoredCase) -> str:
    """Each score's citation, with its DOI link where one is published, on one line."""
    entries = []
    for result in case.report.scores.values():
        entry = f"{result.name}: {result.citation}"
        if result.url:
            doi = result.url.removeprefix("https://doi.org/")
            entry += f", doi:[{doi}]({result.url})"
        entries.append(entry)
    return "**References:** " + "; ".join(entries)


def render_detail(case: ScoredCase, unread: list[str]) -> str:
    """The whole `detail` (CH-16, CH-21): result first, then why; EHR strings escaped; no ids.

    Order: what was scored → band and estimate → lesion points and operator adjustment → the
    expert-operator band → missing findings → the item table → comparators → what could not be
    read → caveat and references. Mapping notes and diagnostics stay in the audit and the JSON.
    """
    result = case.report.scores[PRIMARY]
    blocks: list[list[str]] = [
        [target_line(case)],
        [
            headline(result),
            *primary_lines(case),
            *missing_lines(result, case.mapping.inputs),
        ],
        items_table(case),
        comparator_lines(case),
    ]
    if unread:
        blocks.append(
            [
                # Each entry says its true cause (cds/sources/reasons.py): a timeout is one of them.
                "**Not read completely** (inputs drawn from these data may be missing or shown "
                "as not documented): " + "; ".join(escape_markdown(what) for what in unread)
            ]
        )
    if case.mapping.notes:
        blocks.append(
            [
                f"**Record notes:** {len(case.mapping.notes)} (other vessels, ignored data) in "
                "the review app"
            ]
        )
    blocks += [[f"**Caveat:** {CAVEAT}"], [references(case)]]
    return "\n\n".join("\n".join(block) for block in blocks if block)


def _tail(result: ScoreResult, unread: bool) -> list[str]:
    parts = []
    if result.missing:
        parts.append(f"incomplete: {count_text(len(result.missing), 'finding')} missing")
    else:
        undecided = sum(1 for item in result.items if item.present is None)
        if undecided:
            parts.append(f"{count_text(undecided, 'item')} undetermined")
    if unread:
        parts.append("some data could not be read")  # the cause is in the detail
    return parts


def summary(result: ScoreResult, unread: bool = False) -> str:
    """One sentence < 140 characters (CH-16) with the points (or range) and band(s).

    Known band: "Operator-CTO 4 — difficult: est. technical success 54% (7/13; 95% CI 29–77%),
    small single-centre cohort". Undetermined band: "Operator-CTO 0 to 3 (easy or moderate) —
    incomplete: 3 findings missing". Detail is dropped, least important first, until it fits. The
    percentages are rounded as in the detail (`wording.percent`).
    """
    points = result_points_text(result)
    if result.band is not None:
        head = f"{result.name} {points} — {band_name(result.band)}"
    else:
        head = f"{result.name} {points} ({bands_text(result)})"
    tail = _tail(result, unread)
    joiner = ": " if result.band is not None else " — "
    estimates: list[str | None] = [None]
    if result.estimate is not None:
        outcome = outcome_text(result)
        estimates = [
            f"est. {outcome} {short_estimate_text(result.estimate)}, small single-centre cohort",
            f"est. {outcome} {short_estimate_text(result.estimate, with_ci=False)}, "
            "single-centre cohort",
            f"est. {outcome} {short_estimate_text(result.estimate, with_ci=False)}",
            None,
        ]
    tails = [tail, tail[:1], []]
    for estimate in estimates:
        for kept in tails:
            body = "; ".join(([estimate] if estimate else []) + kept)
            text = f"{head}{joiner}{body}" if body else head
            if len(text) < SUMMARY_LIMIT:
                return text
    text = head[: SUMMARY_LIMIT - 2] + "…"
    assert len(text) < SUMMARY_LIMIT
    return text
