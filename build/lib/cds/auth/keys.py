"""Which signing algorithms and JWKS keys a CDS client may use (CH-24); pure, no I/O.

`none` and every symmetric (HMAC) algorithm are refused outright (CH-24); an HS256 token "signed" with
an RSA public key as the HMAC secret therefore never reaches a key. A key is usable only for the
algorithm family it belongs to: RSA for RS256/RS384/PS384 (at least 2048 bits), EC P-256 for ES256,
EC P-384 for ES384. Public keys only: a JWK carrying private members (`d`, `p`, ...) is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ALLOWED_ALGS = frozenset({"ES384", "RS384", "ES256", "RS256", "PS384"})
"""Header `alg` values accepted (CH-24: ES384/RS384 RECOMMENDED); never `none` or HS*."""

MIN_RSA_BITS = 2048
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_CURVE_ALG = {"secp256r1": "ES256", "secp384r1": "ES384"}


class KeyRejectedError(ValueError):
    """A JWK that may not be used to verify client JWTs; the message says why (no key material)."""


def parse_jwk(data: object) -> jwt.PyJWK:
    """Validate one public JWK (`kid`, `kty` RSA/EC, allowed `alg`, `use: sig`) and build it.

    Raises:
        KeyRejectedError: the JWK is not an acceptable public signing key.
    """
    if not isinstance(data, Mapping):
        raise KeyRejectedError("not a JSON object")
    kid = data.get("kid")
    if not isinstance(kid, str) or not kid:
        raise KeyRejectedError("no kid")
    if _PRIVATE_MEMBERS & data.keys():
        raise KeyRejectedError(f"kid {kid!r}: contains private or symmetric key material")
    kty = data.get("kty")
    if kty not in ("RSA", "EC"):
        raise KeyRejectedError(f"kid {kid!r}: kty {kty!r} is not RSA or EC")
    alg = data.get("alg")
    if alg is not None and alg not in ALLOWED_ALGS:
        raise KeyRejectedError(f"kid {kid!r}: alg {alg!r} is not one of {sorted(ALLOWED_ALGS)}")
    if data.get("use", "sig") != "sig":
        raise KeyRejectedError(f"kid {kid!r}: use is not 'sig'")
    ops = data.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        raise KeyRejectedError(f"kid {kid!r}: key_ops does not include 'verify'")
    if kty == "EC" and data.get("crv") not in ("P-256", "P-384"):
        raise KeyRejectedError(f"kid {kid!r}: curve {data.get('crv')!r} is not P-256 or P-384")
    try:
        key = jwt.PyJWK(dict(data), algorithm=alg)
    except jwt.PyJWTError as exc:
        raise KeyRejectedError(f"kid {kid!r}: {type(exc).__name__}") from None
    if isinstance(key.key, rsa.RSAPublicKey) and key.key.key_size < MIN_RSA_BITS:
        raise KeyRejectedError(f"kid {kid!r}: RSA key shorter than {MIN_RSA_BITS} bits")
    if not isinstance(key.key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise KeyRejectedError(f"kid {kid!r}: not a public key")
    return key


def parse_jwks(document: object, *, strict: bool) -> dict[str, jwt.PyJWK]:
    """Keys of a JWKS (`{"keys": [...]}`) by `kid`.

    `strict` (configured inline JWKS): any unusable key or a repeated kid raises `KeyRejectedError` naming
    its index. Not strict (a JWKS fetched from a client): unusable keys are skipped (a JWKS may hold
    encryption keys too) and the first key with a given kid wins.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise KeyRejectedError('expected a JWKS object {"keys": [...]}')
    keys: dict[str, jwt.PyJWK] = {}
    for index, data in enumerate(document["keys"]):
        try:
            key = parse_jwk(data)
        except KeyRejectedError as exc:
            if strict:
                raise KeyRejectedError(f"keys[{index}]: {exc}") from None
            continue
        kid = str(key.key_id)
        if kid in keys:
            if strict:
                raise KeyRejectedError(f"keys[{index}]: kid {kid!r} repeated")
            continue
        keys[kid] = key
    return keys


def key_fits(key: jwt.PyJWK, alg: str) -> bool:
    """True when `key` may verify a signature made with `alg` (family and curve must match)."""
    if alg not in ALLOWED_ALGS:
        return False
    public: Any = key.key
    if isinstance(public, rsa.RSAPublicKey):
        return alg in ("RS256", "RS384", "PS384")
    if isinstance(public, ec.EllipticCurvePublicKey):
        return _CURVE_ALG.get(public.curve.name) == alg
    return False
