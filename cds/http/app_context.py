"""Opaque, tamper-evident appContext handles (SM-08): `<handle>.<mac>`.

The handle is random and points to server-side state in the store; the MAC lets the app reject a
forged or altered handle before any database look-up (the SMART app verifies it). No patient data
travels in the link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def _mac(secret: bytes, handle: str) -> str:
    digest = hmac.new(secret, handle.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode().rstrip("=")


def sign(secret: str, handle: str) -> str:
    return f"{handle}.{_mac(secret.encode(), handle)}"


def verify(secret: str, signed: str) -> str | None:
    """The handle inside `signed`, or None when the MAC does not match (forged or altered)."""
    handle, dot, mac = signed.rpartition(".")
    if not dot or not handle:
        return None
    # Bytes: compare_digest refuses str with non-ASCII characters (an EHR's own appContext, a
    # TypeError and a 500 on the app's page before).
    expected = _mac(secret.encode(), handle).encode()
    return (
        handle if hmac.compare_digest(mac.encode("utf-8", "backslashreplace"), expected) else None
    )
