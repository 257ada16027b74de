"""What the store cannot keep is refused in the model, naming the field."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from cds.sources.reasons import Problem
from cds.store.schemas import FeedbackIn
from cds.text_checks import dumps_storable, storable_json, storable_text, utc_instant
from tests.store.conftest import card_audit


@pytest.mark.parametrize("text", ["a\x00b", "a\ud800b", "\udfff", "a\x1bb", "a\x7f"])
def test_unstorable_text_is_refused_with_its_position(text: str) -> None:
    with pytest.raises(ValueError, match=r"U\+[0-9A-F]{4} at position"):
        storable_text(text)


@pytest.mark.parametrize("text", ["", "Dr Ñúñez 日本", "line\nbreak\ttab\r", "emoji 🫀"])
def test_ordinary_text_passes_unchanged(text: str) -> None:
    assert storable_text(text) == text


def test_instants_past_year_9999_in_utc_are_refused() -> None:
    late = datetime(9999, 12, 31, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    with pytest.raises(ValueError, match="9999"):
        utc_instant(late)
    assert utc_instant(datetime(9999, 12, 31, 18, tzinfo=timezone(timedelta(hours=-5)))).tzinfo
    assert utc_instant(datetime(2026, 1, 1, tzinfo=UTC)) == datetime(2026, 1, 1, tzinfo=UTC)


def test_feedback_model_names_the_field() -> None:
    with pytest.raises(ValidationError) as refused:
        FeedbackIn.model_validate(
            {
                "card": "c1",
                "outcome": "overridden",
                "overrideReason": {"userComment": "ok", "reason": {"code": "x\x00"}},
                "outcomeTimestamp": "2026-01-01T00:00:00Z",
            }
        )
    assert refused.value.errors()[0]["loc"] == ("overrideReason", "reason", "code")


def test_card_audit_refuses_a_nul_hook_instance() -> None:
    with pytest.raises(ValidationError, match="hook_instance"):
        card_audit(hook_instance="abc\x00")


def test_storable_json_replaces_nul_and_lone_surrogates_everywhere() -> None:
    value = {"a\x00": ["x\ud800y", ("\udfff",), {"n": 1, "t": True, "z": None}], "ok": "Ñ 🫀\x1b"}
    assert storable_json(value) == {
        "a\ufffd": ["x\ufffdy", ["\ufffd"], {"n": 1, "t": True, "z": None}],
        "ok": "Ñ 🫀\x1b",  # other controls are kept: JSON escapes them
    }
    assert dumps_storable(value).encode("utf-8")  # encodable, and no \u0000 escape in it
    assert "\\u0000" not in dumps_storable(value)


@pytest.mark.parametrize(
    "value",
    [
        {"plain": "text", "n": [1, 2.5, None, True], "nested": {"k": ("a", "b")}},
        {"nul": "a\x00b", "key\x00": 1},
        {"lone": ["x\ud800y", "\udfff"]},
        {"emoji": "😀 ok", "escaped backslash": "\\u0000 and \\ud800 as text"},
        {"str enum": Problem.TRUNCATED, "tuple": (1, 2)},
    ],
)
def test_dumps_storable_fast_path_writes_what_the_walk_writes(value: dict[str, Any]) -> None:
    assert json.loads(dumps_storable(value)) == json.loads(json.dumps(storable_json(value)))
    assert "\\u0000" not in dumps_storable(value).replace("\\\\", "")
    assert "\\ud" not in dumps_storable(value).replace("\\\\", "")


@pytest.mark.parametrize(
    "value",
    [
        {1: "int key", "big": 2**70},  # orjson refuses both: the standard library writes them
        {"lone \ud800 key": {1: "x\x00"}},
    ],
)
def test_what_orjson_cannot_write_is_written_as_before(value: dict[Any, Any]) -> None:
    assert dumps_storable(value) == json.dumps(storable_json(value))


def test_dumps_storable_refuses_what_json_refuses_and_stores_nan_as_null() -> None:
    with pytest.raises(TypeError):
        dumps_storable({"when": datetime(2026, 1, 1, tzinfo=UTC)})
    assert json.loads(dumps_storable({"p": float("nan"), "q": [float("inf")]})) == {
        "p": None,
        "q": [None],
    }
