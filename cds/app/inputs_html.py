"""The inputs form of the review page: every canonical input grouped (patient history / lesion
findings / operator), pre-filled from the record with its source (resource type, date, evidence
level), unknown ones marked **unknown** with an empty choice (never false), and the operator
registry's what-if select.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from cds.app.score_html import number_text
from cds.mapping.provenance import MappedInput
from cds.mapping.tables import MappingTables
from cds.scoring.inputs import (
    INPUT_SPECS,
    InputGroup,
    InputSpec,
    InputValue,
    inputs_in,
)
from cds.sources.record import PatientRecord

GROUPS: tuple[tuple[InputGroup, str], ...] = (
    ("patient", "Patient history"),
    ("lesion", "Lesion findings"),
    ("operator", "Operator"),
)


def _control(spec: InputSpec, value: InputValue | None, shown: str | None = None) -> str:
    """The field, `data-initial` = the record's value; `shown` = what was typed (kept on errors)."""
    name = escape(spec.name)
    current = _raw(value) if shown is None else shown
    attrs = (
        f'id="in-{name}" name="{name}" data-kind="{spec.kind}" data-initial="{escape(_raw(value))}"'
    )
    if spec.kind in ("boolean", "enum"):
        choices = ("true", "false") if spec.kind == "boolean" else spec.values
        options = ['<option value="">unknown</option>']
        for choice in choices:
            chosen = " selected" if current == choice else ""
            options.append(f'<option value="{escape(choice)}"{chosen}>{escape(choice)}</option>')
        return f"<select {attrs}>{''.join(options)}</select>"
    bounds = "".join(
        f' {k}="{number_text(v)}"' for k, v in (("min", spec.ge), ("max", spec.le)) if v is not None
    )
    step = "1" if spec.kind == "integer" else "any"
    return (
        f'<input type="number" step="{step}"{bounds} {attrs} value="{escape(current)}" '
        'placeholder="unknown">'
    )


def _raw(value: InputValue | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return number_text(value) if isinstance(value, float) else str(value)


def _dates(record: PatientRecord) -> dict[str, str]:
    """Resource reference → its clinical date, to show next to each source."""
    found: dict[str, str] = {}
    for resource in (*record.conditions, *record.procedures, *record.observations, *record.orders):
        for attr in (
            "effectiveDateTime",
            "performedDateTime",
            "onsetDateTime",
            "recordedDate",
            "authoredOn",
        ):
            when = getattr(resource, attr, None)
            if isinstance(when, str):
                found[resource.ref] = when[:10]
                break
    return found


def _source(mapped: MappedInput | None, dates: dict[str, str]) -> str:
    """Resource type and date of each source (many of one type: the count and the latest date)."""
    if mapped is None:
        return '<span class="source">not read</span>'
    by_type: dict[str, list[str]] = {}
    for ref in mapped.sources:
        by_type.setdefault(ref.split("/")[0], []).append(dates.get(ref, ""))
    parts = []
    for kind, when in by_type.items():
        latest = max(when)
        count = f" ×{len(when)}" if len(when) > 1 else ""
        parts.append(f"{kind}{count} {'latest ' if count and latest else ''}{latest}".strip())
    text = escape("; ".join(parts)) if parts else escape(mapped.rule)
    return f'<span class="source">{text} · <em>{escape(mapped.evidence)}</em></span>'


def inputs_html(
    inputs: dict[str, MappedInput],
    record: PatientRecord,
    posted: Mapping[str, str] | None = None,
    issues: Mapping[str, str] | None = None,
) -> str:
    """Every input grouped; `posted` (a Save's form) overrides the shown value, `issues` names
    the bad ones next to their field."""
    dates = _dates(record)
    sections = []
    for group, title in GROUPS:
        rows = []
        for name in inputs_in(group):
            spec = INPUT_SPECS[name]
            mapped = inputs.get(name)
            value = mapped.value if mapped is not None else None
            source_state = "unknown" if value is None else "from record"
            if mapped is not None and mapped.evidence == "not documented":
                source_state = "not documented"
            shown = None if posted is None else posted.get(name)
            state = source_state
            if shown is not None and shown != _raw(value):
                state = "entered" if shown else "unknown"
            problem = (issues or {}).get(name)
            error = (
                f'<span class="field-error" id="err-{escape(name)}" role="alert">{escape(problem)}</span>'
                if problem
                else ""
            )
            rows.append(
                f'<div class="input" data-state="{state}" data-source-state="{source_state}">'
                f'<label for="in-{escape(name)}">{escape(spec.meaning)}</label>'
                f"{_control(spec, value, shown)}"
                f'<span class="mark" aria-live="polite">{state}</span>{_source(mapped, dates)}'
                f"{error}</div>"
            )
        sections.append(f"<fieldset><legend>{escape(title)}</legend>{''.join(rows)}</fieldset>")
    return "".join(sections)


REGISTRY_FIELDS = {
    "operator_annual_cto_volume": "annual_cto_volume",
    "operator_cto_years": "cto_years",
    "operator_last_year_success_rate": "last_year_success_rate",
}


def operator_choice(tables: MappingTables) -> str:
    """What-if: another operator from the site registry fills the three experience inputs
    (static/app.js); without the script, or for anyone else, edit the three inputs below."""
    if not tables.operators:
        return ""
    options = ['<option value="">operator of the order</option>']
    for entry in tables.operators:
        name = entry.practitioner_id or f"NPI {entry.npi}"
        data = "".join(
            f' data-{field}="{_raw(getattr(entry, attr))}"'
            for field, attr in REGISTRY_FIELDS.items()
            if getattr(entry, attr) is not None
        )
        options.append(f'<option value="{escape(name)}"{data}>{escape(name)}</option>')
    return (
        '<p class="what-if"><label for="operator-choice">What if another operator: </label>'
        f'<select id="operator-choice">{"".join(options)}</select></p>'
    )
