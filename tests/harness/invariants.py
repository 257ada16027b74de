"""CDS Hooks 2.0 response invariants as a test oracle: a plain JSON dict in, violations out.

Independent of `cds` internals on purpose (the service conformance tests feed it raw HTTP bodies).
Each message starts with the requirement id of docs/spec/cds-hooks-smart.md and a JSON path, e.g.
"CH-16 cards[0].summary: 150 characters, must be < 140".
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

SUMMARY_LIMIT = 140
INDICATORS = ("info", "warning", "critical")
SELECTION_BEHAVIORS = ("at-most-one", "any")
ACTION_TYPES = ("create", "update", "delete")
LINK_TYPES = ("absolute", "smart")

_ABSOLUTE_URL = re.compile(r"^https?://[^\s/?#]+\S*$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_RAW_HTML = re.compile(r"<[A-Za-z/!]")
"""CH-21: a tag, closing tag, comment or declaration (`<` followed by a letter, `/` or `!`)."""
_SCRIPT_LINK = re.compile(r"\]\(\s*<?\s*(?:javascript|vbscript|data):", re.IGNORECASE)


def _empty_values(value: Any, path: str) -> Iterator[str]:
    """CH-01: null, "", [] or {} anywhere (the caller exempts the top-level `cards`)."""
    if value is None or value == "" or value == [] or value == {}:
        yield f"CH-01 {path}: empty or null value {value!r}; omit optional fields instead"
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _empty_values(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _empty_values(item, f"{path}[{i}]")


def _text(obj: dict[str, Any], key: str, path: str, rule: str) -> Iterator[str]:
    """A required non-empty string."""
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        yield f"{rule} {path}.{key}: required non-empty string, got {value!r}"


def _url(value: Any, path: str, rule: str) -> Iterator[str]:
    if not isinstance(value, str) or not _ABSOLUTE_URL.match(value):
        yield f"{rule} {path}: must be an absolute http(s) URL, got {value!r}"


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _shape(value: Any, path: str, rule: str, kind: type) -> Iterator[str]:
    if value is not None and not isinstance(value, kind):
        yield f"{rule} {path}: must be a {kind.__name__}, got {type(value).__name__}"
    elif isinstance(value, list) and any(not isinstance(v, dict) for v in value):
        yield f"{rule} {path}: every element must be an object"


def _coding(coding: Any, path: str, rule: str, need_display: bool) -> Iterator[str]:
    if not isinstance(coding, dict):
        yield f"{rule} {path}: a Coding must be an object"
        return
    for key in ("system", "code"):
        yield from _text(coding, key, path, rule)
    if need_display:
        yield from _text(coding, "display", path, "CH-20")


def check_action(action: dict[str, Any], path: str) -> Iterator[str]:
    """CH-17: type, description; delete ⇒ resourceId and no resource; create/update ⇒ resource."""
    kind = action.get("type")
    if kind not in ACTION_TYPES:
        yield f"CH-17 {path}.type: must be one of {ACTION_TYPES}, got {kind!r}"
    yield from _text(action, "description", path, "CH-17")
    resource = action.get("resource")
    if kind == "delete":
        if not isinstance(action.get("resourceId"), str) or not action["resourceId"]:
            yield f"CH-17 {path}: a delete action needs resourceId"
        if "resource" in action:
            yield f"CH-20 {path}: a delete action must not carry resource"
    elif kind in ("create", "update") and (
        not isinstance(resource, dict) or "resourceType" not in resource
    ):
        yield f"CH-17 {path}.resource: a {kind} action needs a FHIR resource object"


def check_suggestion(suggestion: dict[str, Any], path: str) -> Iterator[str]:
    """CH-17: label; uuid format; isRecommended boolean; actions objects."""
    yield from _text(suggestion, "label", path, "CH-17")
    if "uuid" in suggestion and not _UUID.match(str(suggestion["uuid"])):
        yield f"CH-17 {path}.uuid: not a UUID: {suggestion['uuid']!r}"
    if "isRecommended" in suggestion and not isinstance(suggestion["isRecommended"], bool):
        yield f"CH-17 {path}.isRecommended: must be a boolean"
    yield from _shape(suggestion.get("actions"), f"{path}.actions", "CH-17", list)
    for i, action in enumerate(_dicts(suggestion.get("actions"))):
        yield from check_action(action, f"{path}.actions[{i}]")


def check_link(link: dict[str, Any], path: str) -> Iterator[str]:
    """CH-18: label, url, type required; appContext a string and only on smart links."""
    yield from _text(link, "label", path, "CH-18")
    yield from _url(link.get("url"), f"{path}.url", "CH-18")
    kind = link.get("type")
    if kind not in LINK_TYPES:
        yield f"CH-18 {path}.type: must be one of {LINK_TYPES}, got {kind!r}"
    if "appContext" in link:
        if kind != "smart":
            yield f"CH-20 {path}.appContext: only allowed on smart links (type is {kind!r})"
        if not isinstance(link["appContext"], str):
            yield f"CH-18 {path}.appContext: must be a string"
    if "autolaunchable" in link and not isinstance(link["autolaunchable"], bool):
        yield f"CH-18 {path}.autolaunchable: must be a boolean"


def _markdown_safety(text: Any, path: str) -> Iterator[str]:
    if not isinstance(text, str):
        return
    tag = _RAW_HTML.search(text)
    if tag:
        yield f"CH-21 {path}: raw HTML at offset {tag.start()}: {text[tag.start() : tag.start() + 20]!r}"
    if _SCRIPT_LINK.search(text):
        yield f"CH-21 {path}: link to a javascript:/vbscript:/data: URL"


def check_card(card: dict[str, Any], path: str) -> Iterator[str]:
    """CH-16 (with CH-17, CH-18, CH-20, CH-21 for its parts)."""
    summary = card.get("summary")
    yield from _text(card, "summary", path, "CH-16")
    if isinstance(summary, str) and len(summary) >= SUMMARY_LIMIT:
        yield f"CH-16 {path}.summary: {len(summary)} characters, must be < {SUMMARY_LIMIT}"
    if card.get("indicator") not in INDICATORS:
        yield f"CH-16 {path}.indicator: must be one of {INDICATORS}, got {card.get('indicator')!r}"
    if "detail" in card and not isinstance(card["detail"], str):
        yield f"CH-16 {path}.detail: must be a string"
    if "uuid" in card and not _UUID.match(str(card["uuid"])):
        yield f"CH-16 {path}.uuid: not a UUID: {card['uuid']!r}"
    source = card.get("source")
    if not isinstance(source, dict):
        yield f"CH-16 {path}.source: required object"
    else:
        yield from _text(source, "label", f"{path}.source", "CH-16")
        for key in ("url", "icon"):
            if key in source:
                yield from _url(source[key], f"{path}.source.{key}", "CH-16")
        if "topic" in source:
            yield from _coding(source["topic"], f"{path}.source.topic", "CH-16", False)
    suggestions = card.get("suggestions")
    yield from _shape(suggestions, f"{path}.suggestions", "CH-16", list)
    behavior = card.get("selectionBehavior")
    if suggestions and behavior is None:
        yield f"CH-16 {path}: suggestions without selectionBehavior"
    if behavior is not None and not suggestions:
        yield f"CH-16 {path}.selectionBehavior: only allowed with suggestions"
    if behavior is not None and behavior not in SELECTION_BEHAVIORS:
        yield f"CH-16 {path}.selectionBehavior: must be one of {SELECTION_BEHAVIORS}"
    items = _dicts(suggestions)
    if behavior == "at-most-one" and sum(1 for s in items if s.get("isRecommended") is True) > 1:
        yield f"CH-20 {path}: at-most-one allows at most one isRecommended suggestion"
    for i, suggestion in enumerate(items):
        yield from check_suggestion(suggestion, f"{path}.suggestions[{i}]")
    reasons = card.get("overrideReasons")
    yield from _shape(reasons, f"{path}.overrideReasons", "CH-16", list)
    for i, reason in enumerate(reasons if isinstance(reasons, list) else []):
        yield from _coding(reason, f"{path}.overrideReasons[{i}]", "CH-16", True)
    links = card.get("links")
    yield from _shape(links, f"{path}.links", "CH-16", list)
    for i, link in enumerate(_dicts(links)):
        yield from check_link(link, f"{path}.links[{i}]")
    for key in ("summary", "detail"):
        yield from _markdown_safety(card.get(key), f"{path}.{key}")


def check_response(body: dict[str, Any]) -> list[str]:
    """Every violation of CH-01, CH-15..CH-18, CH-20 and CH-21 in a service response body."""
    if not isinstance(body, dict):
        return [f"CH-15 $: the response must be a JSON object, got {type(body).__name__}"]
    problems: list[str] = []
    cards = body.get("cards")
    if not isinstance(cards, list):
        problems.append("CH-15 $.cards: required array")
    for key, value in body.items():
        if key == "cards" and value == []:
            continue  # {"cards": []} is the one sanctioned empty value (CH-01)
        problems.extend(_empty_values(value, f"$.{key}"))
    if "extension" in body and not isinstance(body["extension"], dict):
        problems.append("CH-02 $.extension: must be an object")
    for i, card in enumerate(cards if isinstance(cards, list) else []):
        if not isinstance(card, dict):
            problems.append(f"CH-15 $.cards[{i}]: a card must be an object")
            continue
        problems.extend(check_card(card, f"$.cards[{i}]"))
    actions = body.get("systemActions")
    problems.extend(_shape(actions, "$.systemActions", "CH-19", list))
    for i, action in enumerate(_dicts(actions)):
        problems.extend(check_action(action, f"$.systemActions[{i}]"))
    return problems
