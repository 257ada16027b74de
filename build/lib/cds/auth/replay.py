"""Replay protection: each `(iss, jti)` is accepted once while its token could still be valid (CH-25).

`ReplayStore` is the protocol; `MemoryReplayStore` serves one process and tests. Several replicas need a
shared store (the database-backed one in `cds/store/`), or a token replayed to another replica passes.
The verifier calls `remember` last, after the signature and every claim check, so a forged token cannot
burn a legitimate `jti`; it passes `expires_at` = `exp` + leeway, so an entry lives exactly as long as the
token could be accepted (at most `max_lifetime` + leeway, CH-25: replay cache sized to max token life).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol


class ReplayStore(Protocol):
    """Remembers `(iss, jti)` pairs until they expire."""

    async def remember(self, iss: str, jti: str, expires_at: datetime) -> bool:
        """Record the pair; True when it is new, False when it was already seen (a replay).

        Must be atomic: of two concurrent calls with the same pair exactly one gets True.
        `expires_at` is timezone-aware.
        """
        ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


class MemoryReplayStore:
    """In-process `ReplayStore`; prunes expired pairs on each call. Not shared between replicas."""

    def __init__(self, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self._clock = clock
        self._seen: dict[tuple[str, str], datetime] = {}
        self._expiry: list[tuple[datetime, str, str]] = []

    def __len__(self) -> int:
        return len(self._seen)

    async def remember(self, iss: str, jti: str, expires_at: datetime) -> bool:
        """True when `(iss, jti)` is new (and now remembered until `expires_at`), False on a replay."""
        if expires_at.tzinfo is None:
            raise ValueError("expires_at must be timezone-aware")
        self._prune(self._clock())
        pair = (iss, jti)
        if pair in self._seen:
            return False
        self._seen[pair] = expires_at
        heapq.heappush(self._expiry, (expires_at, iss, jti))
        return True

    def _prune(self, now: datetime) -> None:
        while self._expiry and self._expiry[0][0] <= now:
            _, iss, jti = heapq.heappop(self._expiry)
            self._seen.pop((iss, jti), None)
