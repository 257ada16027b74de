"""Checks for text and instants that reach the database, shared by every model that stores them.

PostgreSQL refuses NUL in text and JSON, and a lone surrogate cannot be encoded as UTF-8: either
used to fail deep in the driver (a 500, and the item lost). Refusing them in the model makes them a
400 naming the field. `outcomeTimestamp` 9999-12-31T23:30:00-05:00 is valid RFC 3339 but past
year 9999 in UTC, where Python's datetime overflows: that is refused the same way.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator

# NUL and the other C0 controls except tab, newline, carriage return; DEL; lone surrogates.
_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


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
