"""Opened from a card: the appContext handle restores what the card showed (SM-08).

The token response carries the card's `appContext` (`<handle>.<mac>`, cds/http/app_context.py).
The MAC is checked before any database look-up; the handle's state (stored with the card, CH-16)
holds the canonical inputs with their provenance. It is used only when it belongs to the patient
and the order of this page: a handle from another patient's card, or from a card about another
order (another lesion), is ignored, with a note, never shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from cds.http.app_context import verify
from cds.mapping.provenance import MappedInput
from cds.store import Store


@dataclass(frozen=True)
class CardState:
    inputs: dict[str, MappedInput] | None
    note: str | None


async def card_state(
    store: Store, secret: str, app_context: object, patient: str, order: str | None
) -> CardState:
    """The card's inputs when `app_context` is our handle for this `patient` and `order` (the
    page's order reference), else a note saying why they are not shown."""
    if not isinstance(app_context, str) or not app_context:
        return CardState(None, None)
    handle = verify(secret, app_context)
    state = None if handle is None else await store.resolve_handle(handle)
    if state is None:
        return CardState(None, "The card's context is unknown or expired: showing the record now.")
    if state.get("patient") != patient:
        return CardState(None, "The card was for another patient: its context is not shown.")
    if state.get("order") != order:
        # Its findings describe another lesion: shown (and saved) under this order they were wrong.
        return CardState(None, "The card was for another order: its context is not shown.")
    case: Any = state.get("case")
    raw = case.get("inputs") if isinstance(case, dict) else None
    if not isinstance(raw, dict):
        return CardState(None, "The card's context holds no inputs: showing the record now.")
    try:
        inputs = {str(k): MappedInput.model_validate(v) for k, v in raw.items()}
    except ValidationError:
        return CardState(None, "The card's context could not be read: showing the record now.")
    return CardState(inputs, "Inputs as shown on the card.")
