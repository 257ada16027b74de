"""CH-01, CH-15..CH-21: the models refuse invalid cards, `dump` omits empties, and the oracle
(tests/harness/invariants.py) reports each kind of violation."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from cds.cdshooks.coding import Coding
from cds.cdshooks.response import Action, Card, CdsResponse, Link, Source, Suggestion, dump
from cds.output.cards import build_card
from tests.harness.invariants import check_response
from tests.output.card_cases import body_of, case_of, ctx, lesion


def _good() -> dict[str, Any]:
    return body_of(build_card(case_of(lesion(4)), ctx()))


def _broken(change: Any) -> list[str]:
    body = copy.deepcopy(_good())
    change(body["cards"][0], body)
    return check_response(body)


def _set(key: str, value: Any) -> Any:
    return lambda card, _body: card.__setitem__(key, value)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_set("detail", None), "CH-01 $.cards[0].detail"),
        (_set("links", []), "CH-01 $.cards[0].links"),
        (_set("uuid", ""), "CH-01 $.cards[0].uuid"),
        (lambda c, b: c["source"].__setitem__("topic", {}), "CH-01 $.cards[0].source.topic"),
        (_set("summary", "x" * 150), "CH-16 $.cards[0].summary: 150 characters"),
        (lambda c, b: c.pop("summary"), "CH-16 $.cards[0].summary"),
        (_set("indicator", "danger"), "CH-16 $.cards[0].indicator"),
        (lambda c, b: c["source"].pop("label"), "CH-16 $.cards[0].source.label"),
        (lambda c, b: c["source"].__setitem__("url", "docs/x"), "CH-16 $.cards[0].source.url"),
        (_set("uuid", "123"), "CH-16 $.cards[0].uuid"),
        (lambda c, b: c.pop("selectionBehavior"), "CH-16 $.cards[0]: suggestions without"),
        (lambda c, b: c.pop("suggestions"), "CH-16 $.cards[0].selectionBehavior"),
        (
            lambda c, b: c["overrideReasons"][0].pop("display"),
            "CH-20 $.cards[0].overrideReasons[0]",
        ),
        (lambda c, b: c["suggestions"][0].pop("label"), "CH-17 $.cards[0].suggestions[0].label"),
        (
            lambda c, b: c["suggestions"][0]["actions"][0].pop("description"),
            "CH-17 $.cards[0].suggestions[0].actions[0].description",
        ),
        (
            lambda c, b: c["suggestions"][0]["actions"][0].__setitem__("type", "delete"),
            "CH-17 $.cards[0].suggestions[0].actions[0]: a delete action needs resourceId",
        ),
        (
            lambda c, b: c["suggestions"][0]["actions"][0].update(type="delete", resourceId="X/1"),
            "CH-20 $.cards[0].suggestions[0].actions[0]: a delete action must not carry resource",
        ),
        (
            lambda c, b: c.update(
                selectionBehavior="at-most-one",
                suggestions=[dict(c["suggestions"][0], isRecommended=True)] * 2,
            ),
            "CH-20 $.cards[0]: at-most-one",
        ),
        (
            lambda c, b: c["links"][1].__setitem__("appContext", "h"),
            "CH-20 $.cards[0].links[1].appContext",
        ),
        (lambda c, b: c["links"][0].pop("type"), "CH-18 $.cards[0].links[0].type"),
        (lambda c, b: c["links"][0].__setitem__("url", "launch"), "CH-18 $.cards[0].links[0].url"),
        (_set("detail", "a <b>bold</b> claim"), "CH-21 $.cards[0].detail: raw HTML"),
        (_set("detail", "x </p>"), "CH-21 $.cards[0].detail: raw HTML"),
        (_set("summary", "Operator-CTO <script>"), "CH-21 $.cards[0].summary: raw HTML"),
        (_set("detail", "[x](javascript:alert(1))"), "CH-21 $.cards[0].detail: link"),
        (lambda c, b: b.pop("cards"), "CH-15 $.cards"),
        (lambda c, b: b.__setitem__("systemActions", []), "CH-01 $.systemActions"),
        (
            lambda c, b: b.__setitem__("systemActions", [{"type": "update", "description": "d"}]),
            "CH-17 $.systemActions[0].resource",
        ),
    ],
)
def test_check_response_reports_each_violation(change: Any, expected: str) -> None:
    problems = _broken(change)
    assert any(p.startswith(expected) for p in problems), problems


def test_check_response_accepts_the_sanctioned_empty_and_plain_comparisons() -> None:
    assert check_response({"cards": []}) == []
    assert check_response(_good()) == []
    assert check_response({"cards": [], "systemActions": []}) != []
    assert check_response([]) != []  # type: ignore[arg-type]
    assert (
        check_response(
            {"cards": [{"summary": "a < b, x<3", "indicator": "info", "source": {"label": "s"}}]}
        )
        == []
    )


def test_dump_omits_optional_fields() -> None:
    assert dump(CdsResponse()) == {"cards": []}
    card = Card(summary="s", indicator="info", source=Source(label="x"))
    assert dump(CdsResponse(cards=[card])) == {
        "cards": [{"summary": "s", "indicator": "info", "source": {"label": "x"}}]
    }
    action = Action(type="update", description="d", resource={"resourceType": "X", "note": []})
    assert dump(CdsResponse(system_actions=[action]))["systemActions"][0]["resource"] == {
        "resourceType": "X"
    }


def test_models_refuse_invalid_cards() -> None:
    source = Source(label="x")
    with pytest.raises(ValidationError):
        Card(summary="x" * 140, indicator="info", source=source)
    with pytest.raises(ValidationError):
        Card(summary="s", indicator="info", source=source, suggestions=[Suggestion(label="l")])
    with pytest.raises(ValidationError):
        Card(
            summary="s",
            indicator="info",
            source=source,
            override_reasons=[Coding(system="s", code="c")],
        )
    with pytest.raises(ValidationError):
        Link(label="l", url="https://x.org", type="absolute", app_context="h")
    with pytest.raises(ValidationError):
        Link(label="l", url="/relative", type="smart")
    with pytest.raises(ValidationError):
        Action(type="delete", description="d", resource={"resourceType": "X"}, resource_id="X/1")
    with pytest.raises(ValidationError):
        Action(type="create", description="d")
    with pytest.raises(ValidationError):
        ctx(card_uuid="not-a-uuid")
    recommended = [Suggestion(label=f"s{i}", is_recommended=True) for i in range(2)]
    with pytest.raises(ValidationError):
        Card(
            summary="s",
            indicator="info",
            source=source,
            suggestions=recommended,
            selection_behavior="at-most-one",
        )
