"""private_key_jwt with RS384 and ES384 (SM-05)."""

from __future__ import annotations

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import SecretStr

from cds.app.client_auth import ASSERTION_TYPE, client_auth
from cds.errors import ConfigError
from cds.settings import Settings

TOKEN_URL = "https://as.example/token"


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> SecretStr:
    return SecretStr(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
    )


@pytest.mark.parametrize(
    ("key", "alg"),
    [
        (rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS384"),
        (ec.generate_private_key(ec.SECP384R1()), "ES384"),
    ],
)
def test_assertion(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, alg: str) -> None:
    auth = client_auth(Settings(smart_client_id="app-1", smart_private_key=_pem(key)))
    form = auth.form(TOKEN_URL, now=1_000_000)
    assert form["client_assertion_type"] == ASSERTION_TYPE
    assert "client_id" not in form
    assert jwt.get_unverified_header(form["client_assertion"])["alg"] == alg
    claims = jwt.decode(
        form["client_assertion"],
        key.public_key(),
        algorithms=[alg],
        audience=TOKEN_URL,
        options={"verify_exp": False},
    )
    assert claims["iss"] == claims["sub"] == "app-1"
    assert claims["exp"] == 1_000_300
    assert claims["jti"]
    assert auth.form(TOKEN_URL)["client_assertion"] != auth.form(TOKEN_URL)["client_assertion"]


def test_public_client_and_refused_curve() -> None:
    assert client_auth(Settings(smart_client_id="pub")).form(TOKEN_URL) == {"client_id": "pub"}
    p256 = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(ConfigError, match="P-384"):
        client_auth(Settings(smart_private_key=_pem(p256)))
