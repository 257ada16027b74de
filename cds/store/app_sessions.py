"""The SMART app's session row as the app sees it (SM-03…SM-07); stored by `Store`.

A plain value: `secret` is already encrypted by the app (cds/app/vault.py), the store never sees a
token in clear. `status` moves authorizing → exchanging (callback claimed the state) → active.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

SessionStatus = Literal["authorizing", "exchanging", "active"]


@dataclass(frozen=True)
class AppSessionRow:
    session_hash: str
    iss: str
    status: SessionStatus
    created_at: datetime
    expires_at: datetime
    secret: str
    state: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
