"""CH-16: a Coding the service sends (topic, overrideReasons) needs a system and a code."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cds.cdshooks.coding import Coding
from cds.cdshooks.response import Card, Source


def test_topic_without_code_is_refused() -> None:
    with pytest.raises(ValidationError, match="topic needs a system and a code"):
        Source(label="x", topic=Coding(system="s"))


def test_override_reason_without_system_is_refused() -> None:
    with pytest.raises(ValidationError, match="overrideReason needs a system and a code"):
        Card(
            summary="s",
            indicator="info",
            source=Source(label="x"),
            override_reasons=[Coding(code="c", display="d")],
        )


def test_complete_codings_pass() -> None:
    card = Card(
        summary="s",
        indicator="info",
        source=Source(label="x", topic=Coding(system="s", code="t")),
        override_reasons=[Coding(system="s", code="c", display="d")],
    )
    assert card.override_reasons == [Coding(system="s", code="c", display="d")]
