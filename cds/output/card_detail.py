"""The card's text (pure): the one-line `summary` and the `detail` in plain GitHub-flavoured Markdown.

What it shows follows shared/spec/scores.md §1 and cds-hooks-smart.md §4 item 8: the item table with the
source of every input, lesion points and operator adjustment apart, the band with an operator meeting
all three experience criteria, the missing inputs, each comparator with the outcome it predicts, the
data that could not be read, the small single-centre caveat and the citations. CH-16: summary < 140
characters. CH-21: no raw HTML, and every string taken from the EHR passes through `escape_markdown`.
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
    outcome_text,
    points_text,
    range_text,
    short_estimate_text,
)
from cds.scored_case import ScoredCase
from cds.scoring.result import ItemResult, ScoreResult
from cds.scoring.scores.operator_cto import OPERATOR_CTO

PRIMARY = OPERATOR_CTO.id
MAX_REFERENCES = 3
"""FHIR references listed per input; the rest are counted (operator history can cite hundreds)."""

_BACKSLASHED = frozenset("\\`*_[]()#!|~")
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
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


def escape_markdown(text: str) -> str:
    """EHR text made inert as GFM *and* as HTML, safe inside a table cell (CH-21).

    Whitespace runs (newlines included) become one space, so the text cannot start a block or break a
    table row; control and format characters (e.g. bidi overrides) are dropped; `&`, `<`, `>` become
    entities, so no tag or entity survives even where a renderer passes raw HTML; the other Markdown
    punctuation (backslash, backtick, `*`, `_`, `[`, `]`, `(`, `)`, `#`, `!`, `|`, `~`) is
    backslash-escaped, so no emphasis, code, link, image or table cell can be formed; a leading `-`,
    `+` or `1.` cannot start a list; a word joiner breaks every GFM autolink (`https://x`, `www.x`,
    `a@b.c`), so a URL or address in EHR text is shown, never linked.
    """
    words = (
        "".join(c for c in word if unicodedata.category(c) not in ("Cc", "Cf"))
        for word in text.split()
    )
    flat = " ".join(word for word in words if word)
    out = []
    for char in flat:
        if char in _ENTITIES:
            out.append(_ENTITIES[char])
        elif char in _BACKSLASHED:
            out.append("\\" + char)
        else:
            out.append(char)
    escaped = "".join(out)
    for pattern, replacement in _AUTOLINK:
        escaped = pattern.sub(replacement, escaped)
    if escaped[:1] in ("-", "+"):
        return "\\" + escaped
    return _ORDERED_MARKER.sub(r"\1\\\2", escaped, count=1)


def value_text(value: object, name: str = "") -> str:
    """An input value for a person: yes/no, 25 mm, 90%, moderate; **unknown** when not known."""
    if value is None:
        return "**unknown**"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        if name.endswith("_rate"):
            return f"{value * 100:.3g}%"
        return f"{value:g}" + (" mm" if name.endswith("_mm") else "")
    return escape_markdown(str(value))


def source_text(mapped: MappedInput | None) -> str:
    """Evidence, FHIR references and note of one input, escaped for a table cell."""
    if mapped is None:
        return "not read"
    parts = [escape_markdown(mapped.evidence)]
    refs = [escape_markdown(ref) for ref in mapped.sources[:MAX_REFERENCES]]
    if len(mapped.sources) > MAX_REFERENCES:
        refs.append(f"and {len(mapped.sources) - MAX_REFERENCES} more")
    if refs:
        parts.append(", ".join(refs))
    if mapped.note:
        parts.append(escape_markdown(mapped.note))
    return "; ".join(parts)


_PRESENT = {True: "yes", False: "no", None: "**unknown**"}


def _item_row(item: ItemResult, mapped: MappedInput | None) -> str:
    cells = [
        item.label,
        f"{item.points:+g}",
        _PRESENT[item.present],
        value_text(item.value, item.input),
        source_text(mapped),
    ]
    return "| " + " | ".join(cells) + " |"


def items_table(result: ScoreResult, inputs: dict[str, MappedInput]) -> list[str]:
    """(a) item, points, present (yes/no/**unknown**), input value, source of the input."""
    lines = [
        "| item | points | present | value | source |",
        "|---|---:|---|---|---|",
    ]
    lines += [_item_row(item, inputs.get(item.input)) for item in result.items]
    return lines


def _subtotal_line(result: ScoreResult, group: str, label: str, scale: str) -> str | None:
    sub = result.groups.get(group)
    if sub is None:
        return None
    return f"- **{label}:** {points_text(sub.points, sub.min, sub.max)} ({scale})"


def headline(result: ScoreResult) -> str:
    """'**Operator-CTO 4 points: difficult** — predicts technical success of CTO-PCI'."""
    points = points_text(result.points, result.min, result.max)
    return (
        f"**{result.name} {points} points: {bands_text(result)}** — predicts {result.outcome_label}"
    )


def primary_lines(case: ScoredCase) -> list[str]:
    """(b) lesion points and operator adjustment apart, (c) the expert-operator band, the estimate."""
    result = case.report.scores[PRIMARY]
    operator = escape_markdown(case.mapping.operator) if case.mapping.operator else "not identified"
    order = escape_markdown(case.mapping.order) if case.mapping.order else "not identified"
    lines = [
        line
        for line in (
            _subtotal_line(result, "lesion", "Lesion points", group_scale(OPERATOR_CTO, "lesion")),
            _subtotal_line(
                result, "operator", "Operator adjustment", group_scale(OPERATOR_CTO, "operator")
            ),
        )
        if line is not None
    ]
    lines.append(f"- **Operator:** {operator}; **order:** {order}")
    expert = result.scenarios.get("expert_operator")
    if expert is not None:
        lines.append(f"- **With {EXPERT_OPERATOR}:** {range_text(expert)}")
    if result.estimate is not None:
        lines.append(
            f"- **Estimate:** {estimate_text(result.estimate, result.outcome_label)}, "
            f"{result.estimate.note}"
        )
    else:
        lines.append(
            f"- **Estimate:** none while the band is undetermined ({bands_text(result)}); "
            f"the published rates are per band"
        )
    return lines


def missing_lines(result: ScoreResult, inputs: dict[str, MappedInput]) -> list[str]:
    """(d) the inputs the Operator-CTO range is waiting for, and why each is unknown."""
    if not result.missing:
        return []
    lines = [
        f"**Missing inputs** ({count_text(len(result.missing), 'input')}; the score is a range "
        "until they are recorded in the review app):"
    ]
    for name in result.missing:
        mapped = inputs.get(name)
        why = escape_markdown(mapped.note) if mapped and mapped.note else "not found"
        lines.append(f"- {name.replace('_', ' ')}: {why}")
    return lines


def comparator_line(result: ScoreResult) -> str:
    """(e) one comparator: what it predicts, its points and band, its published estimate if any."""
    points = points_text(result.points, result.min, result.max)
    band = f" ({bands_text(result)})" if result.bands else ""
    line = f"- **{result.name}** predicts {result.outcome_label}: {points} points{band}"
    if result.estimate is not None:
        line += f"; est. {estimate_text(result.estimate, result.outcome_label)}"
        if result.estimate.note:
            line += f" — {result.estimate.note}"
    else:
        line += "; no published rate for this result"
    if result.missing:
        line += f"; missing: {', '.join(name.replace('_', ' ') for name in result.missing)}"
    return line


def references(case: ScoredCase) -> list[str]:
    """(h) each score's citation with its DOI link where one is published."""
    lines = ["**References:**"]
    for result in case.report.scores.values():
        entry = f"- {result.name}: {result.citation}"
        if result.url:
            doi = result.url.removeprefix("https://doi.org/")
            entry += f", doi:[{doi}]({result.url})"
        lines.append(entry)
    return lines


def render_detail(case: ScoredCase, unread: list[str]) -> str:
    """The whole `detail` (CH-16, CH-21): sections (a)–(h) as plain GFM, EHR strings escaped."""
    report = case.report
    result = report.scores[PRIMARY]
    inputs = case.mapping.inputs
    blocks: list[list[str]] = [
        [headline(result)],
        items_table(result, inputs),
        primary_lines(case),
        missing_lines(result, inputs),
        [
            "**Comparator scores** (each predicts its own outcome; the percentages are not "
            "comparable):",
            *(comparator_line(r) for key, r in report.scores.items() if key != PRIMARY),
        ],
    ]
    if unread:
        blocks.append(
            [
                "**Not read in time** (inputs drawn from these data may be missing or shown as "
                "not documented):",
                *(f"- {escape_markdown(what)}" for what in unread),
            ]
        )
    if case.mapping.notes:
        blocks.append(
            ["**Notes:**", *(f"- {escape_markdown(note)}" for note in case.mapping.notes)]
        )
    blocks.append([f"**Caveat:** {CAVEAT}"])
    blocks.append(references(case))
    return "\n\n".join("\n".join(block) for block in blocks if block)


def _tail(result: ScoreResult, unread: bool) -> list[str]:
    parts = []
    if result.missing:
        parts.append(f"{count_text(len(result.missing), 'input')} missing")
    else:
        undecided = sum(1 for item in result.items if item.present is None)
        if undecided:
            parts.append(f"{count_text(undecided, 'item')} undetermined")
    if unread:
        parts.append("some data not read in time")
    return parts


def summary(result: ScoreResult, unread: bool = False) -> str:
    """One sentence < 140 characters (CH-16) with the points (or range) and band(s).

    Known band: "Operator-CTO 4 — difficult: est. technical success 54% (7/13; 95% CI 29–77%),
    small single-centre cohort". Undetermined band: "Operator-CTO 0 to 3 (easy or moderate): 3 inputs
    missing". Detail is dropped, least important first, until the sentence fits.
    """
    points = points_text(result.points, result.min, result.max)
    if result.band is not None:
        head = f"{result.name} {points} — {band_name(result.band)}"
    else:
        head = f"{result.name} {points} ({bands_text(result)})"
    tail = _tail(result, unread)
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
            text = f"{head}: {body}" if body else head
            if len(text) < SUMMARY_LIMIT:
                return text
    text = head[: SUMMARY_LIMIT - 2] + "…"
    assert len(text) < SUMMARY_LIMIT
    return text
