"""FHIR R4 views of the mapping tables: one `ValueSet` per concept and one `ConceptMap` (pure).

Only enabled rows are exported: the files describe what the service matches, after site overrides.

`value_sets(tables)`: for each concept (canonical input or auxiliary concept of `tables.py`), a
ValueSet of the codes it reads in `code`, `bodySite`, `outcome` or `component`; a concept whose
coded answers are mapped (`element = value`, e.g. CID 3716 severities for `calcification`) gets a
second ValueSet `<concept>-answers`, because question codes and answer codes bind to different
elements (`Observation.code` vs `Observation.valueCodeableConcept`) and one set would be wrong for
both. `compose.include` holds one entry per system listing its codes. A prefix row becomes its own
include with a `regex` filter on the code as the code system writes it (dots put back), e.g.
ICD-10-CM `I257` → `I25\\.7.*`, ICD-10-PCS `0210` → `0210.*`: that keeps the ValueSet machine-expandable
(a terminology server or an offline expansion can apply it), where a comment or extension would not.
R4 forbids `concept` and `filter` in one include (vsd-3), hence the separate includes.

`concept_map(tables)`: one ConceptMap, one group per source system, one `element` per source code,
one `target` per row using that code. The target code is the row's concept; its system
`concepts_system(tables)` names the concept vocabulary of codes.csv (inputs.md names plus the auxiliary
concepts of tables.py), not a published CodeSystem. The row's meaning (`true`, a vessel group, a
value reading such as `quantity:mm`, or a coded answer's value), its FHIR element, evidence, grade,
match and row id are in `target.comment` as `key=value; …` followed by the row's comment. A prefix
row's element code is the prefix itself: `$translate` cannot apply it, the comment says `match=prefix`
(the ValueSet filter is the executable form). `equivalence` compares the source code with the
concept: `equivalent` for a question read as the whole input (`boolean`, `integer`, `coded`,
`quantity:*`: NCDR Lesion Length → occlusion_length_mm), else `wider` (the concept is broader: Z95.1
→ prior_cabg, a segment → its vessel group, the answer Severe → calcification, Severe Calcification
yes/no → calcification).

Codes are written as the code system writes them (ICD-10-CM `Z95.1`, ICD-9-CM procedure `36.10`),
although the tables compare them without dots (`cds.mapping.codes`).
"""

from __future__ import annotations

import re
from typing import Any

from cds import __version__
from cds.fhir_models import r4b_models
from cds.mapping.codes import ICD9CM, ICD10CM
from cds.mapping.tables import AUX_CONCEPTS, CodeRow, MappingTables
from cds.scoring.inputs import INPUT_SPECS

CONCEPT_MAP_ID = "cto-cds-inputs"


def canonical_base(tables: MappingTables) -> str:
    """Where the exported resources live: the local CodeSystem's base (`rules.local_system` before
    `/CodeSystem/`), so a site that renames its local system renames its exports with it."""
    return tables.rules.local_system.rsplit("/CodeSystem/", 1)[0]


def concepts_system(tables: MappingTables) -> str:
    return f"{canonical_base(tables)}/CodeSystem/cto-concepts"


FhirJson = dict[str, Any]
# Value readings that give the whole input (not one value of it): the question is the concept.
_WHOLE_READING = re.compile(r"^(boolean|integer|coded|quantity:.+)$")


def fhir_code(row: CodeRow) -> str:
    """The code as its code system writes it: ICD dots put back (the tables store them dotless)."""
    dot = _dot_position(row)
    code = row.code
    if dot is None or len(code) <= dot:
        return code
    return f"{code[:dot]}.{code[dot:]}"


def _dot_position(row: CodeRow) -> int | None:
    if row.system == ICD10CM:
        return 3
    if row.system == ICD9CM:
        # ICD-9-CM procedures (2 digits before the dot) share the URI with diagnoses (3, E-codes 4);
        # only the resource tells them apart.
        if row.resource == "Procedure":
            return 2
        return 4 if row.code.startswith("E") else 3
    return None


def prefix_regex(row: CodeRow) -> str:
    """A regex matching every code, as the code system writes it, that starts with the prefix."""
    dot = _dot_position(row)
    if dot is None or len(row.code) > dot:
        return re.escape(fhir_code(row)) + ".*"
    missing = dot - len(row.code)  # characters still to come before the dot
    head = re.escape(row.code) + (f"[^.]{{{missing}}}" if missing else "")
    return head + r"(\..*)?"


def _vs_id(concept: str, answers: bool) -> str:
    return concept.replace("_", "-") + ("-answers" if answers else "")


def _name(text: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", text) if part)


def _concept_text(concept: str) -> str:
    spec = INPUT_SPECS.get(concept)
    if spec is not None:
        return f"canonical input {concept} ({spec.meaning}; {spec.describe()})"
    return f"auxiliary concept {concept} ({AUX_CONCEPTS.get(concept, 'site concept')})"


def _where(row: CodeRow) -> str:
    return (
        f"{row.element} of any resource" if row.resource == "*" else f"{row.resource}.{row.element}"
    )


def _includes(rows: list[CodeRow]) -> list[FhirJson]:
    codes: dict[str, list[str]] = {}
    filters: list[FhirJson] = []
    for row in rows:
        if row.match == "prefix":
            regex = prefix_regex(row)
            include = {
                "system": row.system,
                "filter": [{"property": "code", "op": "regex", "value": regex}],
            }
            if include not in filters:
                filters.append(include)
            continue
        listed = codes.setdefault(row.system, [])
        if (code := fhir_code(row)) not in listed:
            listed.append(code)
    enumerated: list[FhirJson] = [
        {"system": system, "concept": [{"code": code} for code in listed]}
        for system, listed in codes.items()
    ]
    return enumerated + filters


def value_sets(tables: MappingTables) -> list[FhirJson]:
    """One ValueSet per concept (plus `<concept>-answers` for mapped coded answers), by concept."""
    groups: dict[tuple[str, bool], list[CodeRow]] = {}
    for row in tables.rows:
        if row.enabled:
            groups.setdefault((row.concept, row.element == "value"), []).append(row)
    result = []
    for (concept, answers), rows in sorted(groups.items()):
        vs_id = _vs_id(concept, answers)
        elements = sorted({_where(r) for r in rows})
        what = (
            "coded answers (Observation.valueCodeableConcept) read as" if answers else "codes for"
        )
        result.append(
            {
                "resourceType": "ValueSet",
                "id": vs_id,
                "url": f"{canonical_base(tables)}/ValueSet/{vs_id}",
                "version": __version__,
                "name": _name(f"cto cds {vs_id}"),
                "title": f"cto-cds {concept}" + (" answers" if answers else ""),
                "status": "active",
                "experimental": False,
                "description": (
                    f"Generated from the cto-cds mapping tables: {what} the "
                    f"{_concept_text(concept)}, found in {', '.join(elements)}. Prefix rows are "
                    "regex filters on the code as the code system writes it."
                ),
                "compose": {"include": _includes(rows)},
            }
        )
    return result


def _equivalence(row: CodeRow) -> str:
    if row.element in ("code", "component") and _WHOLE_READING.match(row.meaning):
        return "equivalent"
    return "wider"


def _target(row: CodeRow) -> FhirJson:
    facts = [
        f"meaning={row.meaning}",
        f"element={_where(row)}",
        f"evidence={row.evidence}",
        f"verified={row.verified}",
        f"match={row.match}",
        f"row={row.id}",
    ]
    comment = "; ".join(facts) + (f". {row.comment}" if row.comment else "")
    return {"code": row.concept, "equivalence": _equivalence(row), "comment": comment}


def concept_map(tables: MappingTables) -> FhirJson:
    """One ConceptMap: source system → element per code → a target per row (see module doc)."""
    groups: dict[str, dict[str, list[FhirJson]]] = {}
    for row in tables.rows:
        if row.enabled:
            elements = groups.setdefault(row.system, {})
            elements.setdefault(fhir_code(row), []).append(_target(row))
    return {
        "resourceType": "ConceptMap",
        "id": CONCEPT_MAP_ID,
        "url": f"{canonical_base(tables)}/ConceptMap/{CONCEPT_MAP_ID}",
        "version": __version__,
        "name": "CtoCdsInputs",
        "title": "cto-cds codes to CTO-PCI score inputs",
        "status": "active",
        "experimental": False,
        "description": (
            "Generated from the cto-cds mapping tables (enabled rows, site overrides applied): "
            "what a code found in a FHIR element means for a CTO-PCI score input. Target codes are "
            f"concept names ({concepts_system(tables)}); target.comment holds the meaning and the row."
        ),
        "group": [
            {
                "source": system,
                "target": concepts_system(tables),
                "element": [
                    {"code": code, "target": targets} for code, targets in elements.items()
                ],
            }
            for system, elements in sorted(groups.items())
        ],
    }


def validate(resource: FhirJson) -> None:
    """Validate with the fhir.resources R4B model (R4's ValueSet/ConceptMap/CodeSystem shape:
    `equivalence` is R4/R4B, R5 replaced it). Raises pydantic's ValidationError, or ConfigError
    when fhir.resources is not installed."""
    models = r4b_models("ValueSet", "ConceptMap", "CodeSystem")
    kind = resource.get("resourceType")
    if kind not in models:
        raise ValueError(f"resourceType {kind!r} is not one of {', '.join(models)}")
    models[kind].model_validate(resource)
