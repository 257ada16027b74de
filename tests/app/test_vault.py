"""Tokens at rest: encrypted, unreadable with another key (SM-07)."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from cds.app.client_auth import client_auth
from cds.app.vault import Vault, fernet_for
from cds.errors import ConfigError
from cds.settings import Settings


def test_round_trip_and_wrong_key() -> None:
    vault = Vault(Fernet(Fernet.generate_key()))
    sealed = vault.seal({"access_token": "secret-token"})
    assert "secret-token" not in sealed
    assert vault.open(sealed) == {"access_token": "secret-token"}
    assert Vault(Fernet(Fernet.generate_key())).open(sealed) is None
    assert vault.open(sealed[:-4] + "AAAA") is None


def test_key_from_settings_or_derived() -> None:
    key = Fernet.generate_key().decode()
    explicit = fernet_for(Settings(smart_token_key=SecretStr(key)))
    assert Fernet(key.encode()).decrypt(explicit.encrypt(b"x")) == b"x"
    a = fernet_for(Settings(app_context_secret=SecretStr("one-secret-0123456789")))
    b = fernet_for(Settings(app_context_secret=SecretStr("other-secret-0123456789")))
    assert Vault(b).open(Vault(a).seal({"k": 1})) is None


def test_bad_private_key_names_the_setting() -> None:
    with pytest.raises(ConfigError, match="CTO_CDS_SMART_PRIVATE_KEY"):
        client_auth(Settings(smart_private_key=SecretStr("not a pem")))
