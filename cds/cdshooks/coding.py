"""The FHIR `Coding` as CDS Hooks carries it: a card's `source.topic` and `overrideReasons` (CH-16)
and a feedback item's `overrideReason.reason` (CH-22).

Every element is optional, as in FHIR: the CDS Hooks sandbox sends feedback reasons with only
`system` and `code`. What a card additionally requires (system, code and, for override reasons, a
display: CH-16, CH-20) is checked by the card models, where the requirement belongs. Unknown fields
are ignored (CH-02).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from cds.text_checks import StorableText as Text


class Coding(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    system: Text | None = None
    version: Text | None = None
    code: Text | None = None
    display: Text | None = None

    @property
    def complete(self) -> bool:
        """Has a system and a code: what a Coding the service sends must have."""
        return bool(self.system and self.code)
