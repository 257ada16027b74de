"""An app session as the SMART callback leaves it, written straight into a replica's database: the
tests that share sessions between replicas start from a signed-in app without an OAuth dance."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from cds.app.session import new_session_id, session_hash
from cds.app.vault import Vault, fernet_for
from cds.settings import Settings
from cds.store.app_sessions import AppSessionRow
from cds.store.repository import Store


async def signed_in(
    url: str, settings: Settings, iss: str, context: dict[str, Any], lifetime: timedelta
) -> str:
    """Store an active session for `context` (its `iss` and token expiry added) in the database at
    `url`; return its cookie value."""
    session_id, now = new_session_id(), datetime.now(UTC)
    vault = Vault(fernet_for(settings))
    row = AppSessionRow(
        session_hash=session_hash(session_id),
        iss=iss,
        status="authorizing",
        created_at=now,
        expires_at=now + lifetime,
        secret=vault.seal({"code_verifier": "x"}),
        state=uuid.uuid4().hex,
    )
    context = {
        "iss": iss,
        "need_patient_banner": True,
        "token_expires_at": time.time() + lifetime.total_seconds(),
        "ehr_launch": True,
        **context,
    }
    sealed = vault.seal({"access_token": "at-" + uuid.uuid4().hex})
    async with await Store.open(url, migrate=False) as store:
        await store.start_app_session(row)
        await store.activate_app_session(row.session_hash, context, sealed, row.expires_at)
    return session_id
