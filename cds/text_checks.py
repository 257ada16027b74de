"""Checks for text and instants that reach the database, shared by every model that stores them.

PostgreSQL refuses NUL in text and JSON, and a lone surrogate cannot be encoded as UTF-8: either
used to fail deep in the driver (a 500, and the item lost). Refusing them in the model makes them a
400 naming the field. `outcomeTimestamp` 9999-12-31T23:30:00-05:00 is valid RFC 3339 but past
year 9999 in UTC, where Python's datetime overflows: that is refused the same way.

What the service itself stores as JSON (a card's audit row, an appContext handle's state, an app
session's context) may quote EHR text it did not choose: an OperationOutcome's diagnostics in a
prefetch, say. Refusing it would lose the audit of a card already sent, so `storable_json` replaces
NUL and lone surrogates by U+FFFD in every string (and key) instead: the store's JSON serializer
(cds/store/engine.py) applies it to every JSON column, so no row is refused for them on PostgreSQL
(`\u0000` cannot become text or jsonb there, so `->>` on it fails; a lone surrogate is not UTF-8)
nor, in a batch of audit rows, takes the other rows down with it. Other control characters are kept:
JSON escapes them and both databases read them back.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated

import orjson
from pydantic import AfterValidator

# NUL and the other C0 controls except tab, newline, carriage return; DEL; lone surrogates.
_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


_UNSTORABLE_IN_JSON = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def storable_json(value: object) -> object:
    """`value` with NUL and lone surrogates replaced by U+FFFD in every string and key."""
    if isinstance(value, str):
        return _UNSTORABLE_IN_JSON.sub(REPLACEMENT, value)
    if isinstance(value, dict):
        return {storable_json(k): storable_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable_json(item) for item in value]
    return value


# Anything orjson would write differently from `json.dumps` goes to the standard library instead:
# datetimes, dataclasses and subclasses of str/int/dict/list (orjson raises for them, as asked).
_ORJSON_STRICT = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def dumps_storable(value: object) -> str:
    """The store's JSON serializer: the JSON text of `storable_json(value)`.

    orjson writes it (≈ 8 % of an order-select call's CPU went to `json.dumps` of the handle's and
    the audit row's JSON columns): it refuses a lone surrogate and escapes a NUL as `\\u0000`, so
    only then is the value walked. What orjson cannot write (a non-string key, an integer past 64
    bits, a datetime) is written by `json.dumps` as before, errors included. One difference: a
    NaN or infinity is stored as `null`, as the card itself is sent (`cds/http/fast_json.py`), where
    `json.dumps` wrote `NaN`, which is not JSON (PostgreSQL refused the row)."""
    try:
        text = orjson.dumps(value, option=_ORJSON_STRICT)
    except orjson.JSONEncodeError:
        return _dumps_stdlib(value)
    if b"\\u0000" in text:
        text = orjson.dumps(storable_json(value), option=_ORJSON_STRICT)
    return text.decode()


def _dumps_stdlib(value: object) -> str:
    """`json.dumps`, walking the value only when its text shows a NUL or surrogate escape."""
    text = json.dumps(value)
    if "\\u0000" not in text and "\\ud" not in text:
        return text
    return json.dumps(storable_json(value))


def storable_text(value: str) -> str:
    """`value` unchanged, or ValueError naming the first character the store cannot keep."""
    found = _UNSTORABLE.search(value)
    if found is not None:
        raise ValueError(
            f"contains U+{ord(found.group()):04X} at position {found.start()} "
            "(control characters and lone surrogates are not accepted)"
        )
    return value


def utc_instant(value: datetime) -> datetime:
    """`value` in UTC, or ValueError when UTC conversion leaves the years 1–9999."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is outside the years 1 to 9999 once converted to UTC") from None


StorableText = Annotated[str, AfterValidator(storable_text)]
"""A `str` field that the store can keep as is (see `storable_text`)."""
